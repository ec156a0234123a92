"""Words, folding and stems: how a text and a rule term are reduced to comparable keys.

A token is a run of letters or digits (``\\w+``); an English possessive ``'s`` is dropped,
other apostrophes and every hyphen split words ("Kursk-Region" is "kursk", "region").
Sentence ends (``.``, ``!``, ``?`` before white space) are tokens too, so phrases never
run across them and ``same_sentence`` can count them.

Each word has two keys: its *surface* (casefolded, accents dropped, ß → ss, ё → е) and its
*stem* in a language. Stems come from the Snowball stemmers (PyStemmer: de, en, ru, fr, pl
and 30 more, C, no data files) and, for Ukrainian, which Snowball lacks, from the light
suffix stripper below. simplemma was measured and rejected: 770 MB resident for
de+en+ru+uk+fr+pl (pl alone 408 MB), 2-4 µs a word, and it leaves proper nouns such as
"Kursker" alone, where the German stemmer gives "kursk".

Stemming never matches a longer word to a shorter one by accident of spelling:
"Kurskorrektur" stems to itself and "Kursker" to "kursk", so a word boundary is kept.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import NamedTuple

import Stemmer

# Languages with a stemmer, by script. A term or text in another language is matched on
# its surface form (and on prefixes) only.
SNOWBALL = {"de": "german", "en": "english", "ru": "russian", "fr": "french", "pl": "polish",
            "es": "spanish", "it": "italian", "nl": "dutch", "pt": "portuguese", "cs": "czech"}
LANGUAGES = (*SNOWBALL, "uk")
CYRILLIC = ("ru", "uk")
LATIN = tuple(lang for lang in LANGUAGES if lang not in CYRILLIC)
DEFAULT_LANGUAGES = ("de", "en", "fr", "pl", "ru", "uk")  # stems of a term with no language

TOKEN = re.compile(r"\w[\w\u0300-\u036f]*|[.!?](?=\s|$)")  # with combining marks (stress)
END = frozenset(".!?")
# "'s" after a letter. Written to start with the quote, not the look-behind, so that the
# regex engine can skip ahead to the next quote (4x faster on a 5 KB text).
_POSSESSIVE = re.compile(r"['’](?<=\w['’])s\b")
_CACHE_LIMIT = 200_000  # words per language; the cache is dropped and rebuilt when full

_stemmers: dict[str, Stemmer.Stemmer] = {}


def plain(text: str) -> str:
    if "'" in text or "’" in text:
        return _POSSESSIVE.sub("\x01\x01", text)  # same length, so spans line up
    return text


def _tokens_by_run(text: str) -> list[str]:
    """``TOKEN.findall(text)``, a third faster: a token never spans white space (``str.split``
    and ``\\s`` agree on what that is), and most runs between white space are one word."""
    out: list[str] = []
    findall = TOKEN.findall
    for run in text.split():
        if run.isalnum():  # letters and digits only: exactly one \w+ token
            out.append(run)
        else:  # "word," "(word" "Kursk-Region" "end.": a "." at the end of a run is before
            out += findall(run)  # white space or the end of the text, as in the whole text
    return out


# ``tokenize`` works with str methods, written in C, where a regex costs ~50 ns a character.
# Sentence ends become stand-ins, letters of no case, so that they survive ``str.casefold``
# and ``str.isalnum``; a text that holds one of them is tokenized by the regex.
STAND_INS = frozenset("\u00aa\u00ba\u00b9")  # ª º ¹ for . ! ?
# Each end is replaced before the next is looked for; the control character "\x02" in front
# keeps an end that was followed by one ("!.") from looking as if it were followed by white space.
_SENTENCE_ENDS = tuple((c, re.compile(re.escape(c) + r"(?=\s|$)"), f"\x02{s} ")
                       for c, s in zip(".!?", "\u00aa\u00ba\u00b9", strict=True))
# Characters that are never in a token (not \w, not a combining mark, not white space), the
# common ones: each becomes a space. Any other one makes ``str.isalnum`` fail below.
_SEPARATORS = tuple(".!?,;:()[]{}<>\"'`´/\\|-‐‑‒–—―„“”«»‘’‚‹›…·•*+=&%$#@~^§°\x01\x02\xad"
                    "€£¥©®™×÷¿¡")


class Tokens(NamedTuple):
    """A text's tokens as ``tokenize`` finds them."""
    words: list[str]                # casefolded, sentence ends included
    ends: frozenset[str]            # which words are sentence ends: END, or STAND_INS for them
    written: list[str] | None       # the tokens as written; None: ``spaced.split()`` gives them
    spaced: str | None = None       # str path: the text, separators as spaces, ends as " ª "
    folded: str | None = None       # str path: ``spaced.casefold()``, whose ``split()`` is ``words``


def tokenize(text: str) -> Tokens:
    """What ``words`` gives, and what the snippet code needs to find a token in the text."""
    text = plain(text)
    if "\u00aa" in text or "\u00ba" in text or "\u00b9" in text:
        found, ends = _tokens_by_run(text), END
    else:
        s = text
        for c, rx, stand_in in _SENTENCE_ENDS:
            if c in s:
                s = rx.sub(stand_in, s)
        for c in _SEPARATORS:
            s = s.replace(c, " ")  # returns ``s`` itself when ``c`` is not in it
        if "\u0345" not in s:  # the one mark that casefolds to a letter
            cased = s.casefold()
            folded = cased.split()  # casefolding neither makes nor takes white space
            if "".join(folded).isalnum():
                return Tokens(folded, STAND_INS, None, s, cased)
        found, ends = _tokens_by_run(s), STAND_INS  # "_", a combining mark, a rarer separator
    return Tokens(_casefolded(found), ends, found)


def words(text: str) -> list[str]:
    """The casefolded tokens of ``text`` (words and sentence ends), in order."""
    return _casefolded(_tokens_by_run(plain(text)))


def _casefolded(tokens: list[str]) -> list[str]:
    """Each token casefolded, with one ``casefold`` call for them all."""
    return "\x00".join(tokens).casefold().split("\x00") if tokens else []


def spans(text: str) -> list[tuple[int, int]]:
    """Character offsets of the tokens ``words`` returns, in the same order."""
    return [m.span() for m in TOKEN.finditer(plain(text))]


# Letters that Unicode does not decompose into a base letter and a mark: "Łódź" is written
# "Lodz" in German and English news, "manœuvres" is also spelled "manoeuvres".
_LIGATURES = {"ł": "l", "đ": "d", "ø": "o", "œ": "oe", "æ": "ae"}


def _fold_char(ch: str) -> str:
    if "\u0400" <= ch <= "\u04ff":
        return "е" if ch == "ё" else ch  # keep й, ї: they are letters of their own
    if ch in _LIGATURES:
        return _LIGATURES[ch]
    return "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))


_FOLD: dict[str, str] = {}


def fold(word: str) -> str:
    """A casefolded word without accents (ä → a, é → e, ł → l, œ → oe, ё → е, stress marks dropped)."""
    if word.isascii():
        return word
    out = []
    for ch in word:
        f = _FOLD.get(ch)
        if f is None:
            f = _FOLD[ch] = _fold_char(ch) if not unicodedata.combining(ch) else ""
        out.append(f)
    return "".join(out)


def script(word: str) -> str:
    """'cyrillic' when the word has a Cyrillic letter, else 'latin'."""
    return "cyrillic" if any("\u0400" <= c <= "\u04ff" for c in word) else "latin"


_RU_MIN_STEM = 3


def stem(word: str, lang: str) -> str:
    """The stem of a casefolded word in ``lang`` (the word itself for other languages)."""
    if lang == "uk":
        return stem_uk(word)
    name = SNOWBALL.get(lang)
    if name is None:
        return word
    s = _stemmers.get(lang)
    if s is None:
        s = _stemmers[lang] = Stemmer.Stemmer(name, 0)
    out = str(s.stemWord(word))
    if lang == "ru" and out.endswith("е") and len(out) > _RU_MIN_STEM:
        # Snowball strips "-еи", "-ею", "-ее" but only "-я", "-ей" after an е: "Кореи" → "кор",
        # "Корея" → "коре". Dropping that е gives every form of such nouns one stem.
        out = out[:-1]
    return out


# Ukrainian inflection endings (nouns, adjectives, participles, verbs), longest first. Not the
# infinitive "-ати" nor the dative "-ові": they would also cut the plurals "солдати" → "солд",
# "втрати" → "втр" and the adjective "військові" → "військ" (not "військов", as "військових").
_UK_ENDINGS = sorted({
    "ами", "ями", "ою", "ею", "єю", "ів", "їв", "ах", "ях", "ам", "ям", "ом",
    "ем", "єм", "ей", "ій", "ий", "ої", "ого", "ому", "ими", "іми", "их", "іх", "им", "ім",
    "ую", "юю", "ая", "яя", "ього", "ьому", "ються", "ється", "лися",
    "а", "я", "у", "ю", "і", "ї", "и", "е", "є", "о", "ь",
}, key=len, reverse=True)
_UK_MIN_STEM = 3


def stem_uk(word: str) -> str:
    """Strip one inflection ending, keeping at least three letters: "курської" → "курськ",
    "військових" → "військов", "солдати" and "солдатів" → "солдат"."""
    if len(word) <= _UK_MIN_STEM:
        return word
    for end in _UK_ENDINGS:
        if word.endswith(end) and len(word) - len(end) >= _UK_MIN_STEM:
            return word[: -len(end)]
    return word


def text_languages(lang: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The stemming languages for Latin and for Cyrillic words of a text in ``lang``; a text
    of unknown language gets the stems of every default language of the word's script."""
    if lang is None:
        return tuple(x for x in DEFAULT_LANGUAGES if x not in CYRILLIC), CYRILLIC
    return (lang if lang in LATIN else "en",), (lang if lang in CYRILLIC else "ru",)


class Keys:
    """Word -> keys (surface first, then stems) for texts of one language, cached.

    The cache is what makes stemming cheap: news vocabulary repeats, so after a few hundred
    articles nearly every word is a dictionary hit."""

    def __init__(self, lang: str | None):
        self.latin, self.cyrillic = text_languages(lang)
        self.cache: dict[str, tuple[str, ...]] = {}

    def of(self, distinct: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """The cache, which holds every word of ``distinct``."""
        words = list(distinct)
        cache = self.cache
        missing = [w for w in words if w not in cache]
        if missing:
            if len(cache) + len(missing) > _CACHE_LIMIT:
                # A new cache with all of ``words``: clear() and adding only the missing ones
                # lost the others (a KeyError in the caller once 200,000 words were seen).
                cache = self.cache = {}
                missing = words
            for w in missing:
                langs = self.cyrillic if not w.isascii() and script(w) == "cyrillic" else self.latin
                surface = fold(w)
                stems = {fold(stem(w, lang)) for lang in langs}
                stems.discard(surface)
                cache[w] = (surface, *sorted(stems))
        return cache


_KEYS: dict[str | None, Keys] = {}


def keys_for(lang: str | None) -> Keys:
    """The shared, cached Keys for texts in ``lang`` (None: unknown)."""
    lang = lang.lower()[:2] if lang else None
    if lang is not None and lang not in LANGUAGES:
        lang = None
    found = _KEYS.get(lang)
    if found is None:
        found = _KEYS[lang] = Keys(lang)
    return found


def term_keys(word: str, langs: Iterable[str]) -> set[str]:
    """Every key under which a rule's word (casefolded) may appear in a text: its surface
    and its stem in each of ``langs`` that writes in the word's script."""
    sc = script(word)
    out = {fold(word)}
    for lang in langs:
        if (lang in CYRILLIC) == (sc == "cyrillic"):
            out.add(fold(stem(word, lang)))
    return out
