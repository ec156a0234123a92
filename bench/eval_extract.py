"""Extraction quality and speed: the pipeline's extractor against plain trafilatura.

Runs the function the daemon uses (``monitor.extract.page``, on saved pages, no network) and,
side by side in the same run on the same bytes, plain ``trafilatura.extract(html)`` with its
default options, over the two annotated sets of a corpus folder laid out like
``../shared/corpus/articles``:

- ``scrapinghub-aeb``: 4-gram shingle precision / recall / F1 against the human ground truth,
  as the article-extraction-benchmark's evaluate.py computes them;
- ``trafilatura-eval``: trafilatura's with/without snippet scoring (micro-averaged).

Prints both, pages/s for both, and the slowest page against the daemon's time limit.

    .venv/bin/python bench/eval_extract.py [CORPUS] [--predictions-out FILE] [--limit N] [--rounds N]

``--predictions-out`` writes the pipeline's output as ``{"id","text"}`` lines. The corpus is
read at run time, never copied into the repository; without it the benchmark says so and
exits 0.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import trafilatura

from monitor import extract
from monitor.config import ExtractSection
from monitor.errors import ExtractError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT.parent / "shared" / "corpus" / "articles"
TIME_LIMIT = ExtractSection().timeout


def pipeline(html: bytes, url: str | None) -> str:
    try:
        return extract.page(html, url).text
    except ExtractError:
        return ""


def plain(html: bytes, url: str | None) -> str:
    return trafilatura.extract(html) or ""


EXTRACTORS: dict[str, Callable[[bytes, str | None], str]] = {"pipeline": pipeline, "trafilatura": plain}


# -- the two sets -----------------------------------------------------------------------------
def scrapinghub(folder: Path) -> Iterator[tuple[str, str | None, bytes, object]]:
    truth = json.loads((folder / "ground-truth.json").read_text("utf-8"))
    for pid in sorted(truth):
        path = folder / "html" / f"{pid}.html.gz"
        if path.exists():
            yield pid, truth[pid].get("url"), gzip.decompress(path.read_bytes()), truth[pid]["articleBody"]


def trafilatura_eval(folder: Path) -> Iterator[tuple[str, str | None, bytes, object]]:
    data = json.loads((folder / "evaldata.json").read_text("utf-8"))
    for key in sorted(data):
        rec = data[key]
        path = folder / "html" / f"{rec['file']}.gz"
        if path.exists():
            url = key if key.startswith("http") else None
            yield key, url, gzip.decompress(path.read_bytes()), rec


# -- scoring, as documented in the corpus README ----------------------------------------------
def _shingles(text: str) -> Counter:
    tokens = re.findall(r"\w+", text)
    if not tokens:
        return Counter()
    if len(tokens) < 4:
        return Counter([tuple(tokens)])
    return Counter(tuple(tokens[i:i + 4]) for i in range(len(tokens) - 3))


def score_shingles(pairs: list[tuple[str, str]]) -> dict[str, float]:
    """pairs of (truth, prediction); returns precision, recall, f1, accuracy."""
    precisions, recalls, exact = [], [], 0
    for truth, pred in pairs:
        t, p = _shingles(truth), _shingles(pred)
        tp = sum(min(c, p[s]) for s, c in t.items())
        fp = sum(max(0, c - t[s]) for s, c in p.items())
        fn = sum(max(0, c - p[s]) for s, c in t.items())
        total = tp + fp + fn
        if total:
            tp, fp, fn = tp / total, fp / total, fn / total
        if fp == fn == 0:
            pr = rc = 1.0
        else:
            pr = tp / (tp + fp) if tp + fp else 0.0
            rc = tp / (tp + fn) if tp + fn else 0.0
        if tp + fp > 0:
            precisions.append(pr)
        if tp + fn > 0:
            recalls.append(rc)
        exact += re.findall(r"\w+", truth) == re.findall(r"\w+", pred)
    precision = sum(precisions) / len(precisions) if precisions else 0.0
    recall = sum(recalls) / len(recalls) if recalls else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "accuracy": exact / max(1, len(pairs))}


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


def score_snippets(pairs: list[tuple[dict, str]]) -> dict[str, float]:
    tp = fp = fn = tn = 0
    for rec, pred in pairs:
        out = _norm(pred)
        found = sum(_norm(w) in out for w in rec.get("with", []))
        leaked = sum(_norm(w) in out for w in rec.get("without", []))
        tp, fn = tp + found, fn + len(rec.get("with", [])) - found
        fp, tn = fp + leaked, tn + len(rec.get("without", [])) - leaked
    return {
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp else 0.0,
        "accuracy": (tp + tn) / max(1, tp + fp + fn + tn),
    }


# -- the run ----------------------------------------------------------------------------------
def run_set(pages: list, scorer: Callable, out: list[dict], rounds: int = 1) -> dict[str, dict]:
    """Each page through both extractors, alternating which goes first, ``rounds`` times; a
    page's time is its fastest round (the machine is shared and noisy)."""
    results: dict[str, dict] = {name: {"pairs": [], "seconds": 0.0, "slowest": (0.0, "")}
                                for name in EXTRACTORS}
    for i, (pid, url, html, truth) in enumerate(pages):
        order = list(EXTRACTORS) if i % 2 == 0 else list(reversed(EXTRACTORS))
        for name in order:
            took = float("inf")
            for _ in range(rounds):
                started = time.perf_counter()
                text = EXTRACTORS[name](html, url)
                took = min(took, time.perf_counter() - started)
            r = results[name]
            r["pairs"].append((truth, text))
            r["seconds"] += took
            r["slowest"] = max(r["slowest"], (took, pid))
            if name == "pipeline":
                out.append({"id": pid, "text": text})
    for r in results.values():
        r["scores"] = scorer(r["pairs"])
        r["pages_per_s"] = len(pages) / r["seconds"] if r["seconds"] else 0.0
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", nargs="?", default=str(DEFAULT))
    ap.add_argument("--predictions-out", help="write the pipeline's output as {id, text} lines")
    ap.add_argument("--limit", type=int, default=0, help="only the first N pages of each set")
    ap.add_argument("--rounds", type=int, default=3, help="time each page N times, keep the fastest")
    args = ap.parse_args()
    corpus = Path(args.corpus)
    sets = [("scrapinghub-aeb", scrapinghub, score_shingles),
            ("trafilatura-eval", trafilatura_eval, score_snippets)]
    if not any((corpus / name).is_dir() for name, _, _ in sets):
        print(f"no article sets under {corpus}; nothing to measure")
        return 0
    predictions: list[dict] = []
    print(f"{'set':18} {'extractor':12} {'pages':>5} {'prec':>6} {'recall':>6} {'F1':>6} {'acc':>6} "
          f"{'pages/s':>8} {'slowest':>8}")
    verdicts = []
    for name, reader, scorer in sets:
        folder = corpus / name
        if not folder.is_dir():
            continue
        pages = list(reader(folder))
        if args.limit:
            pages = pages[:args.limit]
        res = run_set(pages, scorer, predictions, args.rounds)
        for ext, r in res.items():
            s = r["scores"]
            print(f"{name:18} {ext:12} {len(pages):5d} {s['precision']:6.3f} {s['recall']:6.3f} "
                  f"{s['f1']:6.3f} {s['accuracy']:6.3f} {r['pages_per_s']:8.1f} {r['slowest'][0]:7.2f}s")
        ours, base = res["pipeline"], res["trafilatura"]
        verdicts.append(f"{name}: F1 {ours['scores']['f1'] - base['scores']['f1']:+.3f} vs plain, "
                        f"speed {ours['pages_per_s'] / base['pages_per_s']:.2f}x, slowest page "
                        f"{ours['slowest'][0]:.2f}s ({ours['slowest'][1][:60]}) vs limit {TIME_LIMIT:g}s")
    print("\n".join(verdicts))
    if args.predictions_out:
        with open(args.predictions_out, "w", encoding="utf-8") as fh:
            for p in predictions:
                fh.write(json.dumps(p, ensure_ascii=False) + "\n")
        print(f"wrote {len(predictions)} predictions to {args.predictions_out}")
    extra = f" --predictions-out {args.predictions_out}" if args.predictions_out else ""
    print(f"reproduce: {sys.executable} bench/eval_extract.py {corpus} --rounds {args.rounds}{extra}"
          + (f" --limit {args.limit}" if args.limit else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
