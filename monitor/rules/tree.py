"""The rule language's vocabulary: its keys, limits and the frozen tree a rule file becomes.

``syntax`` builds these from YAML; ``engine`` compiles them; ``schema`` describes them for
editors. Kept apart so that each of those can import the words without the parser. The
operators (any, all, none, near, same_sentence) are declared in ``operators``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .salience import ALERT_AT, DIGEST_AT

FIELDS = ("title", "summary", "body")
SEVERITIES = ("info", "normal", "urgent")
DEFAULT_WITHIN = 10
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_CONCEPT = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_WORD = re.compile(r"(=?)(\w[\w\u0300-\u036f]*)(\*?)")
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MIN_PREFIX = 3


@dataclass(frozen=True)
class Word:
    text: str          # casefolded
    exact: bool = False   # ``=word``: this form only, no stemming
    prefix: bool = False  # ``word*``: any word starting so


@dataclass(frozen=True)
class Term:
    text: str                       # as written
    words: tuple[Word, ...] = ()    # a phrase: consecutive words
    regex: str | None = None        # ``/pattern/``: RE2, case-insensitive
    lang: str | None = None         # from a concept's language list: the stemmer to use
    concept: str | None = None
    path: str = ""
    line: int = 0


@dataclass(frozen=True)
class Ref:
    name: str
    path: str
    line: int


@dataclass(frozen=True)
class Node:
    op: str                                  # a name in operators.OPERATORS
    children: tuple[Node | Term | Ref, ...]
    within: int = DEFAULT_WITHIN             # near: at most this many words between the hits
    scope: tuple[str, ...] | None = None     # in: fields this node looks at
    line: int = 0


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    tree: Node
    description: str = ""
    fields: tuple[str, ...] = FIELDS
    channels: tuple[str, ...] = ()
    severity: str = "normal"
    min_hits: float = 1
    title_weight: float = 2
    alert_at: float = ALERT_AT           # salience from which a match alerts (rules/salience.py)
    digest_at: float = DIGEST_AT         # salience from which it goes to the digest; below: stored only
    feeds: tuple[str, ...] = ()          # globs on the feed's URL or title
    skip_feeds: tuple[str, ...] = ()     # globs on the feed's URL or title: its articles are left out
    tags: tuple[str, ...] = ()           # the feed has at least one of these tags
    languages: tuple[str, ...] = ()      # the article's language is one of these
    max_age: float | None = None         # seconds: older articles (by their date) are ignored
    path: str = ""
    line: int = 0
    # The index in ``tree.children`` of the rule's own ``all:`` when the rule also names its topic
    # (``match``, ``any``, ``near``, ``same_sentence``): then ``all:`` is the context the topic must
    # appear in ("@war_context"), and words hit only by it are the match's context, not its terms
    # (issue 14). -1: no such clause; a rule of ``all:`` alone has it as its topic.
    context: int = -1
    # ``about:``, the words an article about the topic uses besides the topic's own (for Kursk:
    # the war). Never decides whether the rule fires; salience weighs a mention outside title and
    # lead as passing when the article's other sentences hardly use them (rules/salience.py).
    about: Node | None = None
