"""The workload of ``bench/matching.py``: real articles and rule sets generated from real words.

Articles are the texts of ``topics/dev.jsonl`` in ``../shared/corpus``; rule words come from the
corpus' article pages (``articles/``), not from the texts the rules run on, as a reader's
rules do. Everything is read at run time; nothing of the corpus is copied into the repository.
"""

from __future__ import annotations

import csv
import gzip
import html
import json
import random
import re
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.rules import morph

COMMON_SHARE = 0.01  # rule words are in at most 1% of the texts: a rule fires on ~0.25% of articles
CONCEPTS = 40
Spec = dict[str, Any]  # a rule as its YAML mapping
Concepts = dict[str, dict[str, list[str]]]


@dataclass(frozen=True)
class Item:
    lang: str
    title: str
    text: str

    @property
    def size(self) -> int:
        return len(self.title.encode()) + 1 + len(self.text.encode())


def kb(items: list[Item]) -> float:
    return sum(it.size for it in items) / len(items) / 1000


def load(corpus: Path) -> list[Item]:
    lines = (corpus / "topics" / "dev.jsonl").read_text("utf-8").splitlines()
    return [Item(r.get("lang") or "en", r.get("title") or "", r.get("text") or "")
            for r in map(json.loads, filter(str.strip, lines))]


_TAGS = re.compile(r"<(script|style|noscript)\b.*?</\1\s*>|<!--.*?-->|<[^>]*>", re.S | re.I)


def pages(corpus: Path) -> list[Item]:
    """The German and English texts of the article pages (trafilatura's stripped of tags,
    boilerplate and all; scrapinghub's ground truth): where the rules' words come from."""
    out = []
    base = corpus / "articles" / "trafilatura-eval"
    if (base / "index.csv").exists():
        for row in csv.DictReader((base / "index.csv").open(encoding="utf-8")):
            if row["lang_detected"] in ("de", "en") and (base / "html" / row["file"]).exists():
                raw = gzip.decompress((base / "html" / row["file"]).read_bytes())
                try:
                    page = raw.decode("utf-8")
                except UnicodeDecodeError:  # the older German pages are Latin-1 or cp1252
                    page = raw.decode("cp1252", "replace")
                out.append(Item(row["lang_detected"], "", html.unescape(_TAGS.sub(" ", page))))
    base = corpus / "articles" / "scrapinghub-aeb"
    if (base / "index.csv").exists() and (base / "ground-truth.json").exists():
        truth = json.loads((base / "ground-truth.json").read_text("utf-8"))
        for row in csv.DictReader((base / "index.csv").open(encoding="utf-8")):
            if row["body_lang"] in ("de", "en") and row["id"] in truth:
                out.append(Item(row["body_lang"], "", truth[row["id"]]["articleBody"]))
    return out


_TOKEN = re.compile(r"\w+|[^\w\s]")


@dataclass
class Vocab:
    words: dict[str, list[str]]     # lang -> words, most frequent first
    bigrams: dict[str, list[str]]   # lang -> "word word" phrases, most frequent first
    prefixes: dict[str, list[str]]  # lang -> "word*"
    texts: Counter[str]             # lang -> texts in the stream: the share of rules in that language


def _counts(items: list[Item]) -> tuple[Counter[str], Counter[str], dict[str, Counter[str]]]:
    """In how many texts each word (4+ letters) and bigram is, and each word's spellings."""
    df: Counter[str] = Counter()
    bdf: Counter[str] = Counter()
    surface: dict[str, Counter[str]] = {}
    for it in items:
        alpha = [t if t.isalpha() and len(t) >= 4 else "" for t in _TOKEN.findall(it.title + "\n" + it.text)]
        for t in filter(None, alpha):
            surface.setdefault(t.casefold(), Counter())[t] += 1
        df.update({t.casefold() for t in alpha if t})
        bdf.update({f"{a.casefold()} {b.casefold()}" for a, b in zip(alpha, alpha[1:], strict=False) if a and b})
    return df, bdf, surface


def _key_counts(texts: list[Item]) -> Counter[str]:
    """In how many texts each of the engine's keys (folded words and their stems) is."""
    df: Counter[str] = Counter()
    for it in texts:
        distinct = set(morph.words(it.title + "\n" + it.text)) - morph.END
        keys = morph.keys_for(it.lang).of(distinct)
        df.update({k for w in distinct for k in keys[w]})
    return df


def _ranked(counts: Counter[str]) -> list[tuple[str, int]]:
    """Most frequent first, ties alphabetically (``most_common``: in set order, hash-seeded)."""
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def vocabulary(source: list[Item], stream: list[Item], common_share: float = COMMON_SHARE) -> Vocab:
    """Words of ``source`` seen in two texts at least, bigrams and prefixes, frequency-ranked
    per language. Left out: words whose surface or stem is in more than ``common_share`` of the
    texts of ``stream`` or of ``source`` (stop-words, "Regierung", "Russia", "höheren" by its
    stem "hoh"), bigrams with such a word, and prefixes of the words of more stream texts: a
    rule term is a real word that most texts do not contain."""
    common: set[str] = set()
    for texts in (stream, source):
        cap = max(2, int(common_share * len(texts)))
        common |= {k for k, c in _key_counts(texts).items() if c > cap}
    folded = sorted((morph.fold(w), c) for w, c in _key_counts(stream).items())
    cap = max(2, int(common_share * len(stream)))

    def rare(w: str) -> bool:
        return not morph.term_keys(w, morph.DEFAULT_LANGUAGES) & common

    def rare_prefix(w: str) -> bool:
        p, reach = morph.fold(w.casefold()), 0
        i = bisect_left(folded, (p, 0))
        while i < len(folded) and folded[i][0].startswith(p) and reach <= cap:
            reach, i = reach + folded[i][1], i + 1
        return reach <= cap

    vocab = Vocab({}, {}, {}, Counter(it.lang for it in stream))
    for lang in sorted({it.lang for it in source}):
        df, bdf, surface = _counts([it for it in source if it.lang == lang])
        words = [surface[w].most_common(1)[0][0] for w, c in _ranked(df) if c >= 2 and rare(w)]
        vocab.words[lang] = words
        vocab.bigrams[lang] = [b for b, _c in _ranked(bdf) if all(map(rare, b.split()))]
        vocab.prefixes[lang] = [w + "*" for w in words if len(w) >= 6 and rare_prefix(w)]
    return vocab


def generate(n: int, vocab: Vocab, seed: int) -> tuple[list[Spec], Concepts]:
    """``n`` rules and the concepts they use. The mix: 60% ``any`` of 2-5 terms (45% words,
    40% 2-word phrases, 15% ``prefix*``); 15% ``all`` + ``any`` + ``none``; 10% ``near``
    within 5-15 words (half with an ``any``); 5% ``same_sentence``; 5% with ``@concept``s
    (40 concepts of 2-5 terms per language); 5% with a ``/regex/``. German and English rules
    in the proportion of the texts."""
    rnd = random.Random(seed)
    langs = sorted(vocab.words)
    weights = [vocab.texts.get(lang, 1) for lang in langs]

    def word(lang: str) -> str:
        return rnd.choice(vocab.words[lang])

    def term(lang: str) -> str:
        kind = rnd.random()
        return word(lang) if kind < 0.45 else rnd.choice(vocab.bigrams[lang] if kind < 0.85 else vocab.prefixes[lang])

    def regex(lang: str) -> str:
        w, kind = re.escape(word(lang).lower()), rnd.random()
        if kind < 0.4:
            return f"/\\b{w}(?:s|n|en|es|er)?\\b/"
        if kind < 0.7:
            a, b = map(re.escape, rnd.choice(vocab.bigrams[lang]).split())
            return f"/\\b{a}[\\s-]+{b}\\b/"
        return f"/\\d+ {w}/"

    concepts = {f"c{i}": {lang: [term(lang) for _ in range(rnd.randint(2, 5))] for lang in langs}
                for i in range(CONCEPTS)}
    out: list[Spec] = []
    for i in range(n):
        lang = rnd.choices(langs, weights)[0]
        terms = [term(lang) for _ in range(rnd.randint(2, 5))]
        rule: Spec = {"id": f"r{i:05d}", "title": f"Generated rule {i}"}
        kind = rnd.random()
        if kind < 0.60:
            rule["any"] = terms
        elif kind < 0.75:
            rule["all"] = [word(lang) for _ in range(rnd.randint(1, 2))]
            rule["any"] = terms
            rule["none"] = [term(lang) for _ in range(rnd.randint(1, 2))]
        elif kind < 0.85:
            rule["near"], rule["within"] = [term(lang), term(lang)], rnd.randint(5, 15)
            if rnd.random() < 0.5:
                rule["any"] = terms[:2]
        elif kind < 0.90:
            rule["same_sentence"] = [term(lang), term(lang)]
        elif kind < 0.95:
            rule["any"] = [f"@c{rnd.randrange(CONCEPTS)}", *terms[:2]]
            if rnd.random() < 0.5:
                rule["all"] = [f"@c{rnd.randrange(CONCEPTS)}"]
        else:
            rule["any"] = [regex(lang), *terms[:2]]
        out.append(rule)
    return out, concepts


def to_yaml(specs: list[Spec], concepts: Concepts) -> str:
    """A rule file: JSON is YAML's flow style, one concept or rule a line."""
    used = {t[1:] for s in specs for key in ("any", "all") for t in s.get(key, ()) if t.startswith("@")}
    lines = [f"  {name}: {json.dumps(terms, ensure_ascii=False)}" for name, terms in concepts.items() if name in used]
    lines = (["concepts:", *lines] if lines else []) + ["rules:"]
    return "\n".join([*lines, *(f"  - {json.dumps(s, ensure_ascii=False)}" for s in specs)]) + "\n"
