"""Rules that learn, measured (issue 17): 5-fold cross-validation on the labelled dev set. Each
fold's model is trained (monitor/learn.py) only on the other folds' labels given as feedback on
the matches the rule made there; the held-out fold is tiered by the learned salience. Printed per
topic and language (where there are positives): the salience figures as the mean over folds,
beside the plain salience's over the same folds:

  noise   share of alerts that are grade 0 (want <= 0.05)   about   share of alerts of grade 2 (>= 0.75)
  g2 al   grade-2 items alerted (>= 0.95)                   g1 rch  grade >= 1 items in alert or digest (>= 0.95)
  prec/rec  alerts against dev.jsonl's strict labels

The plain salience and its features are what ``monitor match`` prints for each match (rules/
salience.py); the tiers use the shipped default thresholds (alert_at 0.5, digest_at 0.15).
A rule's feedback is pooled across languages, as the daemon pools it; the figures are per
language of the held-out items. The feedback is what the daemon would train on had the team
judged each of the other folds' matches of the rule, of every tier (``monitor feedback --match``
judges a story that only went to the digest or the store): each becomes the row the store hands
the learner (store.learning.Judged: one current verdict, the match's plain salience and
features, the article's title and text) and goes through the daemon's own ``training.examples``
and ``learn.train``. A table before the figures says how many verdicts of each kind each fold's
model had, and whether it trained. ``learned`` uses the shipped minimum (learn.MIN_VERDICTS, MIN_EACH); ``waived``
trains on any feedback with one verdict of each kind: a diagnostic of what the model would do,
not what ships. Called by eval_topics.py (``report``), or alone:

    .venv/bin/python bench/eval_learn.py [LABELLED.jsonl] [--rules DIR]
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from monitor import learn, training  # noqa: E402
from monitor.store.learning import Judged  # noqa: E402

FOLDS = 5
from monitor.rules.salience import ALERT_AT, DIGEST_AT  # noqa: E402  (the shipped defaults)

FIGURES = ("noise", "about", "g2 al", "g1 rch", "prec", "rec")


def matches(items: list[dict], rules: Path, monitor: list[str]) -> dict[str, dict[str, dict]]:
    """item id -> rule id -> the match ``monitor match`` printed."""
    lines = "".join(json.dumps({"id": it["id"], "title": it.get("title", ""), "text": it.get("text", ""),
                                "lang": it.get("lang")}, ensure_ascii=False) + "\n" for it in items)
    res = subprocess.run([*monitor, "match", "--rules", str(rules)], input=lines, capture_output=True,
                         text=True, check=False)
    if res.returncode != 0:
        sys.exit(f"monitor match failed: {res.stderr.strip()}")
    out: dict[str, dict[str, dict]] = {}
    for line in res.stdout.splitlines():
        row = json.loads(line)
        out[row["id"]] = {m["rule"]: m for m in row.get("matches", [])}
    return out


def grades(path: Path) -> dict[str, dict[str, int]]:
    if not path.exists():
        return {}
    with path.open(encoding="utf-8") as f:
        return {r["id"]: {k: int(v) for k, v in r.items() if k != "id"} for r in csv.DictReader(f)}


def tier(salience: float | None) -> str:
    if salience is None:
        return "alert"
    return "alert" if salience >= ALERT_AT else "digest" if salience >= DIGEST_AT else "store"


def judged(item: dict, m: dict, label: int) -> Judged:
    """The row store.judged would hand the learner for this match had the team judged it (one
    current verdict; ``monitor match`` prints the features the store keeps with the match)."""
    return Judged(0, 0, (("relevant" if label else "not", 0.0),), m.get("salience"), dict(m.get("features") or {}),
                  f"{item.get('title', '')}\n{item.get('text', '')}", m.get("field"), tuple(m.get("terms", ())))


def example(item: dict, m: dict, label: int) -> learn.Example:
    """The match as the learner sees it, through the daemon's own conversion (training.examples)."""
    return training.examples([judged(item, m, label)])[0]


def feedback(items: list[dict], got: dict[str, dict[str, dict]], label: str, rule: str,
             grade: dict[str, dict[str, int]]) -> list[str]:
    """Per fold: the verdicts its model trains on (relevant / not, and the tiers the "not" ones
    had, with their grades), and whether the shipped minimum lets it train."""
    folds = fold_of(items, label)
    judged_items = [it for it in items if rule in got.get(it["id"], {})]
    nots = [it for it in judged_items if it.get(label) != 1]
    out = [f"{rule}: {len(judged_items)} matches in all, {len(nots)} of them not relevant: "
           + ", ".join(f"{it.get('lang')} {got[it['id']][rule].get('tier', 'alert')} grade "
                       f"{grade.get(it['id'], {}).get(label, '?')} (fold {folds[it['id']]})" for it in nots)]
    useful = 0
    for k in range(FOLDS):
        train = [example(it, got[it["id"]][rule], int(it.get(label) == 1)) for it in judged_items
                 if folds[it["id"]] != k]
        pos = sum(e.label for e in train)
        held = sum(1 for it in nots if folds[it["id"]] == k)
        useful += bool(held and learn.enough(train))
        out.append(f"  fold {k}: trains on {pos} relevant, {len(train) - pos} not "
                   f"({'trains' if learn.enough(train) else 'plain: too few'}); holds out {held} not relevant")
    # a held-out match judged "not" can leave the alerts only where a model trained without it
    out.append(f"  folds where a trained model meets a held-out 'not relevant' match: {useful} of {FOLDS} "
               f"(needs {learn.MIN_EACH} 'not' verdicts besides the held-out one)")
    return out


def figures(items: list[dict], tiers: dict[str, str], label: str, grade: dict[str, dict[str, int]]) -> list[float]:
    def g(it: dict) -> int:
        return grade.get(it["id"], {}).get(label, 2 if it.get(label) == 1 else 0)

    alerts = [it for it in items if tiers.get(it["id"]) == "alert"]
    reached = [it for it in items if tiers.get(it["id"]) in ("alert", "digest")]
    g2 = [it for it in items if g(it) == 2]
    g1 = [it for it in items if g(it) >= 1]
    pos = [it for it in items if it.get(label) == 1]

    def share(part: int, whole: int) -> float:
        return part / whole if whole else math.nan

    return [share(sum(1 for it in alerts if g(it) == 0), len(alerts)),
            share(sum(1 for it in alerts if g(it) == 2), len(alerts)),
            share(sum(1 for it in g2 if it in alerts), len(g2)),
            share(sum(1 for it in g1 if it in reached), len(g1)),
            share(sum(1 for it in alerts if it.get(label) == 1), len(alerts)),
            share(sum(1 for it in pos if it in alerts), len(pos))]


def fold_of(items: list[dict], label: str) -> dict[str, int]:
    """Stratified, deterministic folds: each class in the order of its ids' hashes, dealt round."""
    out = {}
    for cls in (0, 1):
        members = sorted((it["id"] for it in items if (it.get(label) == 1) == bool(cls)),
                         key=lambda i: hashlib.sha1(i.encode()).hexdigest())
        out |= {i: n % FOLDS for n, i in enumerate(members)}
    return out


def crossval(items: list[dict], got: dict[str, dict[str, dict]], label: str, rule: str,
             grade: dict[str, dict[str, int]], lang: str = "all") -> dict[str, list[float]]:
    """Per variant (plain, learned, waived): the figures on the held-out items in ``lang``, mean
    over folds (NaN folds left out). A fold's model learns from the other folds' items in every
    language, as the daemon pools a rule's feedback (learn.py)."""
    folds = fold_of(items, label)
    per: dict[str, list[list[float]]] = {"plain": [], "learned": [], "waived": []}
    for k in range(FOLDS):
        train = [example(it, got[it["id"]][rule], int(it.get(label) == 1)) for it in items
                 if folds[it["id"]] != k and rule in got.get(it["id"], {})]
        test = [it for it in items if folds[it["id"]] == k and lang in ("all", it.get("lang"))]
        models = {"learned": learn.train(train), "waived": learn.train(train, min_verdicts=2, min_each=1)}
        plain = {it["id"]: tier(got[it["id"]][rule].get("salience")) for it in test if rule in got.get(it["id"], {})}
        per["plain"].append(figures(test, plain, label, grade))
        for name, model in models.items():
            tiers = {}
            for it in test:
                m = got.get(it["id"], {}).get(rule)
                if m is None:
                    continue
                ex = example(it, m, 0)
                sal, _ = learn.score(model, ex.features, ex.text, ex.salience,
                                     DIGEST_AT if plain[it["id"]] != "store" else None)
                tiers[it["id"]] = tier(sal) if model.trained else plain[it["id"]]
            per[name].append(figures(test, tiers, label, grade))
    return {name: [_mean([f[i] for f in rows]) for i in range(len(FIGURES))] for name, rows in per.items()}


def _mean(xs: list[float]) -> float:
    xs = [x for x in xs if not math.isnan(x)]
    return sum(xs) / len(xs) if xs else math.nan


def report(items: list[dict], rules: Path, monitor: list[str], topics: dict[str, str], corpus: Path) -> None:
    got = matches(items, rules, monitor)
    grade = grades(corpus / "topics" / "dev-grades.csv")
    print(f"\nlearning: {FOLDS}-fold cross-validation, mean over folds (plain salience from monitor match, "
          f"alert_at {ALERT_AT}, digest_at {DIGEST_AT}; minimum {learn.MIN_VERDICTS} verdicts, "
          f"{learn.MIN_EACH} of each)")
    print("feedback per fold (the other folds' matches of the rule, every tier, judged by their labels):")
    for label, rule in topics.items():
        print("\n".join(feedback(items, got, label, rule, grade)))
    print(f"{'topic':20} {'lang':4} {'variant':8} " + " ".join(f"{f:>6}" for f in FIGURES))
    for label, rule in topics.items():
        for lang in sorted({it.get("lang", "?") for it in items}) + ["all"]:
            subset = [it for it in items if lang == "all" or it.get("lang") == lang]
            if not any(it.get(label) == 1 for it in subset):
                continue
            for name, figs in crossval(items, got, label, rule, grade, lang).items():
                print(f"{label:20} {lang:4} {name:8} " + " ".join(f"{x:6.3f}" for x in figs))


def main() -> int:
    import argparse

    from eval_topics import CORPUS, TOPICS, _monitor, load

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("labelled", nargs="?", default=str(CORPUS / "topics" / "dev.jsonl"))
    ap.add_argument("--rules", default=str(ROOT / "rules"))
    args = ap.parse_args()
    path = Path(args.labelled)
    if not path.exists():
        print(f"no labelled file at {path}; nothing to measure")
        return 0
    report(load(path, True), Path(args.rules), _monitor(), TOPICS, CORPUS)
    print(f"reproduce: {sys.executable} bench/eval_learn.py {path} --rules {args.rules}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
