"""Topic-rule quality: precision, recall and F1 of the shipped rules on labelled news.

Runs the real ``monitor match`` command over a labelled JSON-lines file (default
``../shared/corpus/topics/dev.jsonl``: fields id, lang, title, text, kursk,
north_korean_troops, hard_negative) plus the project's seed article (both topics positive),
and prints, per topic and language, TP/FP/FN, precision, recall, F1, the ids of misses and
false alarms, and false alarms on hard negatives separately.

    .venv/bin/python bench/eval_topics.py [LABELLED.jsonl] [--rules DIR] [--no-seed]

The corpus is read at run time and never copied into the repository; without it the
benchmark says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
TOPICS = {"kursk": "kursk", "north_korean_troops": "north-korean-troops"}  # label -> rule id
# The annotators mark borderline calls "UNCERTAIN:" and give the looser label as
# "(lenient T1=1)" (T1 = kursk, T2 = north_korean_troops) in the item's reason.
LENIENT = {"kursk": re.compile(r"lenient[^)]*T1\s*=\s*1"), "north_korean_troops": re.compile(r"lenient[^)]*T2\s*=\s*1")}


def _monitor() -> list[str]:
    script = Path(sys.executable).with_name("monitor")
    return [str(script)] if script.exists() else [sys.executable, "-m", "monitor.cli"]


def load(path: Path, seed: bool) -> list[dict]:
    items = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
    seed_path = CORPUS / "seed" / "kursk-nk-troops-de.txt"
    if seed and seed_path.exists():
        text = seed_path.read_text("utf-8").strip()
        items.append({"id": "seed:kursk-nk-troops-de", "lang": "de", "title": text.split("\n")[0],
                      "text": text, "kursk": 1, "north_korean_troops": 1, "hard_negative": 0})
    return items


def fired(items: list[dict], rules: Path) -> dict[str, set[str]]:
    lines = "".join(json.dumps({"id": it["id"], "title": it.get("title", ""),
                                "text": it.get("text", ""), "lang": it.get("lang")},
                               ensure_ascii=False) + "\n" for it in items)
    res = subprocess.run([*_monitor(), "match", "--rules", str(rules)], input=lines,
                         capture_output=True, text=True, check=False)
    if res.returncode != 0:
        sys.exit(f"monitor match failed: {res.stderr.strip()}")
    out: dict[str, set[str]] = {}
    for line in res.stdout.splitlines():
        row = json.loads(line)
        out[row["id"]] = {m["rule"] for m in row.get("matches", [])}
    return out


def label_of(item: dict, label: str, strict: bool) -> int:
    if not strict and LENIENT[label].search(item.get("reason") or ""):
        return 1
    return 1 if item.get(label) == 1 else 0


def table(items: list[dict], got: dict[str, set[str]], strict: bool) -> None:
    """Per topic and language: counts, precision, recall, F1; then the misses and false alarms
    (marked UNCERTAIN where the annotators were unsure)."""
    print(f"{'topic':22} {'lang':4} {'items':>5} {'pos':>4} {'TP':>4} {'FP':>4} {'FN':>4} "
          f"{'prec':>6} {'recall':>6} {'F1':>6} {'FP-hard':>7}")
    details = []
    for label, rule in TOPICS.items():
        for lang in sorted({it.get("lang", "?") for it in items}) + ["all"]:
            subset = [it for it in items if lang == "all" or it.get("lang") == lang]
            pos = [it for it in subset if label_of(it, label, strict)]
            neg = [it for it in subset if not label_of(it, label, strict)]
            tp = [it for it in pos if rule in got.get(it["id"], ())]
            fn = [it for it in pos if rule not in got.get(it["id"], ())]
            fp = [it for it in neg if rule in got.get(it["id"], ())]
            hard = [it for it in fp if it.get("hard_negative") == 1]
            p = len(tp) / (len(tp) + len(fp)) if tp or fp else float("nan")
            r = len(tp) / (len(tp) + len(fn)) if tp or fn else float("nan")
            f1 = 2 * len(tp) / (2 * len(tp) + len(fp) + len(fn)) if tp or fp or fn else float("nan")
            print(f"{label:22} {lang:4} {len(subset):5d} {len(pos):4d} {len(tp):4d} "
                  f"{len(fp):4d} {len(fn):4d} {p:6.3f} {r:6.3f} {f1:6.3f} {len(hard):7d}")
            if lang != "all":
                for kind, found in (("miss       ", fn), ("false alarm", fp)):
                    details += [f"  {kind} {label:20} {it['id']}"
                                + ("  (UNCERTAIN)" if "UNCERTAIN" in (it.get("reason") or "") else "")
                                for it in found]
    print("\n".join(details) or "no misses, no false alarms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("labelled", nargs="?", default=str(CORPUS / "topics" / "dev.jsonl"))
    ap.add_argument("--rules", default=str(ROOT / "rules"))
    ap.add_argument("--no-seed", action="store_true", help="leave out the seed article")
    args = ap.parse_args()
    path = Path(args.labelled)
    if not path.exists():
        print(f"no labelled file at {path}; nothing to measure")
        return 0
    items = load(path, not args.no_seed)
    got = fired(items, Path(args.rules))
    table(items, got, strict=True)
    print()
    print("with the annotators' lenient labels on UNCERTAIN items (their '(lenient T1=1)' notes):")
    table(items, got, strict=False)
    from eval_learn import report as learning  # issue 17: 5-fold cross-validation of rules that learn

    learning(items, Path(args.rules), _monitor(), TOPICS, CORPUS)
    seed = " --no-seed" if args.no_seed else ""
    print(f"reproduce: {sys.executable} bench/eval_topics.py {path} --rules {args.rules}{seed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
