"""Full-text search over every stored article and every entry without one (issue 18), on the
FTS5 index of migration 17 (``search_fts`` over the ``search_text`` view; triggers keep it in
sync), or on PostgreSQL on ``search_docs`` (store/baseline.py). Text a person typed never reaches
either query syntax: ``parse`` reads it once, and ``fts_query`` makes quoted strings of it for
FTS5, ``ts_query`` phraseto_tsquery calls for PostgreSQL, so no input raises.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from typing import Any, NamedTuple

from .base import Queries
from .console import story_filter

_PART = re.compile(r'"([^"]*)"|(\S+)')
_WORD = re.compile(r"\w")
# best first: bm25 with the title weighted 10 to the body's 1: the table's rank (migration 17), spelled out
# when a filter drops hits (measured on 100,000 articles: FTS5's rank sort is faster on all hits, twice as
# slow on hits filtered; bench/console_store.py)
_HITS = ("SELECT s.rowid AS entry_id, COALESCE(e.title, '') AS title, e.link, COALESCE(f.title, f.url) AS feed_title, "
         "e.published, e.first_seen_at, snippet(search_fts, -1, '**', '**', '…', 30) AS snippet "
         "FROM search_fts s JOIN entries e ON e.id = s.rowid JOIN feeds f ON f.id = e.feed_id "
         "WHERE search_fts MATCH ? {} ORDER BY {} LIMIT ? OFFSET ?")
# the snippet from the text where the query matches, else from the title (FTS5's snippet picks the column)
_PG_HITS = ("SELECT s.entry_id, COALESCE(e.title, '') AS title, e.link, COALESCE(f.title, f.url) AS feed_title, "
            "e.published, e.first_seen_at, ts_headline('monitor_search', CASE WHEN to_tsvector('monitor_search', "
            "COALESCE(t.body, '')) @@ q.query THEN t.body ELSE t.title END, q.query, "
            "'StartSel=**, StopSel=**, MaxWords=30, MinWords=12, MaxFragments=1, FragmentDelimiter=…') AS snippet "
            "FROM q JOIN search_docs s ON s.tsv @@ q.query JOIN entries e ON e.id = s.entry_id "
            "JOIN feeds f ON f.id = e.feed_id JOIN search_text t ON t.entry_id = s.entry_id WHERE TRUE {} "
            "ORDER BY ts_rank('{{0.1, 0.1, 0.1, 1.0}}', s.tsv, q.query) DESC, s.entry_id LIMIT ? OFFSET ?")
# the entries of the stories that pass a filter: each story's own and its follow-ups'. ``+s.rowid``:
# checked against that set, not handed to FTS5 as a list of rowids to look up one by one (slower
# by two orders of magnitude on a common word)
_OF_STORIES = ("AND {1} IN (SELECT m.entry_id FROM matches m WHERE {0} "
               "UNION ALL SELECT x.entry_id FROM matches m JOIN matches x ON x.lead_id = m.id WHERE {0})")


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


class Term(NamedTuple):
    words: str  # a word, or a phrase's words
    prefix: bool = False  # the last word is a prefix ("Kurs*")


Query = tuple[list[list[Term]], list[Term]]  # ANDed groups of ORed terms; terms excluded


def parse(text: str) -> Query | None:
    """What a person typed as a query, or None when it asks for nothing. Each word is a term
    (so AND, NEAR(, ^, column: are plain words); terms are ANDed; "a phrase" stays a phrase; a
    word ending in ``*`` is a prefix; ``OR`` between two words or phrases is kept; ``-word``
    excludes; anything else (an unbalanced quote, a lone ``*`` or ``-``) is plain words or
    nothing. Pure."""
    items: list[tuple[bool, Term] | None] = []  # (excluded, term); None: an OR
    for m in _PART.finditer(text or ""):
        if m.group(1) is not None:
            if _WORD.search(m.group(1)):
                items.append((False, Term(m.group(1))))
            continue
        word = m.group(2)
        if word == "OR":
            items.append(None)
            continue
        minus = word.startswith("-") and len(word) > 1
        word = word[1:] if minus else word
        prefix = word.endswith("*")
        word = word.rstrip("*").replace('"', " ")
        if _WORD.search(word):
            items.append((minus, Term(word, prefix)))
    groups: list[list[Term]] = []
    excluded: list[Term] = []
    join = False  # the last item was an OR between two words
    for i, item in enumerate(items):
        if item is None:
            before, after = items[i - 1] if i else None, items[i + 1] if i + 1 < len(items) else None
            if before is not None and after is not None and not before[0] and not after[0]:
                join = True
            else:
                groups.append([Term("OR")])  # not between two words: the plain word
            continue
        if item[0]:
            excluded.append(item[1])
        elif join:
            groups[-1].append(item[1])
        else:
            groups.append([item[1]])
        join = False
    return (groups, excluded) if groups else None


def _render(query: Query, term: Callable[[Term], str], conj: str, disj: str, neg: str) -> str:
    groups, excluded = query
    text = f" {conj} ".join(term(g[0]) if len(g) == 1 else "(" + f" {disj} ".join(map(term, g)) + ")"
                            for g in groups)
    if not excluded:
        return text
    return f"({text}) {neg} ({f' {disj} '.join(map(term, excluded))})"


def fts_query(text: str) -> str | None:
    """A safe FTS5 query for what a person typed (``parse``): every term quoted. Pure."""
    query = parse(text)
    if query is None:
        return None
    return _render(query, lambda t: _quoted(t.words) + (" *" if t.prefix else ""), "AND", "OR", "NOT")


def ts_query(text: str) -> tuple[str, list[str]] | None:
    """The same query as a PostgreSQL tsquery expression and its parameters: a word or phrase is
    ``phraseto_tsquery``; a prefix is ``to_tsquery`` of the term's letters and digits only,
    quoted, the last one ``:*`` (nothing a person types reaches tsquery's syntax). Pure."""
    query = parse(text)
    if query is None:
        return None
    params: list[str] = []

    def term(t: Term) -> str:
        if t.prefix:
            words = re.findall(r"\w+", t.words)
            params.append(" <-> ".join(f"'{w}'" for w in words) + ":*")
            return "to_tsquery('monitor_search', ?)"
        params.append(t.words)
        return "phraseto_tsquery('monitor_search', ?)"

    return _render(query, term, "&&", "||", "&& !!"), params


class SearchQueries(Queries):
    def search(self, q: str, *, rule: str | None = None, channel: str | None = None, state: str | None = None,
               feedback: str | None = None, since: float | None = None, until: float | None = None,
               limit: int = 50, offset: int = 0) -> dict:
        """Stored articles (and entries without one) matching ``q`` (``fts_query``), best first:
        ``{"total": N, "hits": [...]}``. With any story filter (rule, channel, state, feedback,
        since, until; as the inbox's), only entries of a story (as its lead or a follow-up) that
        passes it."""
        if self.dialect == "postgresql":
            return self._search_pg(q, rule, channel, state, feedback, since, until, limit, offset)
        query = fts_query(q)
        if query is None:
            return {"total": 0, "hits": []}
        extra, args = "", list[Any]()
        if any(v is not None for v in (rule, channel, state, feedback, since, until)):
            where, args = story_filter(rule=rule, channel=channel, state=state, feedback=feedback, since=since,
                                       until=until)
            extra, args = _OF_STORIES.format(" AND ".join(where), "+s.rowid"), [*args, *args]
        try:
            total = int(self.db.execute(f"SELECT COUNT(*) FROM search_fts s WHERE search_fts MATCH ? {extra}",
                                        [query, *args]).fetchone()[0])
            order = "bm25(search_fts, 10.0, 1.0)" if extra else "s.rank"
            page = [max(1, min(int(limit), 500)), max(0, int(offset))]
            hits = self._rows(_HITS.format(extra, order), [query, *args, *page])
        except sqlite3.OperationalError as e:
            if str(e).startswith("fts5:"):  # fts_query's output is always valid; should it ever not be: no hits
                return {"total": 0, "hits": []}
            raise
        self._stories_of(hits)
        return {"total": total, "hits": hits}

    def _search_pg(self, q: str, rule: str | None, channel: str | None, state: str | None, feedback: str | None,
                   since: float | None, until: float | None, limit: int, offset: int) -> dict:
        """``search`` on PostgreSQL: the tsquery of ``ts_query`` against ``search_docs``, ranked
        by ts_rank with the title weighted 10 to the text's 1, the snippet by ts_headline."""
        got = ts_query(q)
        if got is None:
            return {"total": 0, "hits": []}
        query, terms = got
        extra, args = "", list[Any]()
        if any(v is not None for v in (rule, channel, state, feedback, since, until)):
            where, args = story_filter(rule=rule, channel=channel, state=state, feedback=feedback, since=since,
                                       until=until)
            extra, args = _OF_STORIES.format(" AND ".join(where), "s.entry_id"), [*args, *args]
        head = f"WITH q AS (SELECT {query} AS query) "
        total = int(self.db.execute(head + f"SELECT COUNT(*) FROM q JOIN search_docs s ON s.tsv @@ q.query "
                                    f"WHERE TRUE {extra}", [*terms, *args]).fetchone()[0])
        page = [max(1, min(int(limit), 500)), max(0, int(offset))]
        hits = self._rows(head + _PG_HITS.format(extra), [*terms, *args, *page])
        self._stories_of(hits)
        return {"total": total, "hits": hits}

    def _stories_of(self, hits: list[dict[str, Any]]) -> None:
        """Each hit's story alert id (None: no alert), the rules that matched its entry, its
        first match (``match_id``, what a verdict on a story that did not alert is given on: None
        when no rule matched), the story's latest current verdict (``verdict``, or None) and the
        reports that a rule should have matched it (``misses``: rule_id, given_by)."""
        for h in hits:
            h["alert_id"], h["rules"], h["match_id"], h["verdict"], h["misses"] = None, [], None, None, []
        if not hits:
            return
        by_entry = {h["entry_id"]: h for h in hits}
        marks = ",".join("?" * len(by_entry))
        if self._column_names("misses"):  # the rules someone said should have matched it (migration 21)
            for entry_id, rule_id, given_by in self.db.execute(
                    f"SELECT entry_id, rule_id, given_by FROM misses WHERE entry_id IN ({marks}) "
                    "ORDER BY created_at, rule_id", list(by_entry)).fetchall():
                by_entry[entry_id]["misses"].append({"rule_id": str(rule_id), "given_by": str(given_by)})
        roots: dict[int, list[dict[str, Any]]] = {}
        stories: dict[str, list[dict[str, Any]]] = {}
        for entry_id, rule_id, root, match_id, story in self.db.execute(
                "SELECT entry_id, rule_id, COALESCE(lead_id, primary_id, id), id, story FROM matches "
                f"WHERE entry_id IN ({marks}) ORDER BY id", list(by_entry)).fetchall():
            h = by_entry[entry_id]
            if rule_id not in h["rules"]:
                h["rules"].append(rule_id)
            if h["match_id"] is None:
                h["match_id"] = int(match_id)
                stories.setdefault(str(story), []).append(h)
            roots.setdefault(int(root), []).append(h)
        if stories:
            for story, verdict in self.db.execute(  # oldest first: the latest is left standing
                    f"SELECT story, verdict FROM feedback WHERE story IN ({','.join('?' * len(stories))}) "
                    "AND replaced_at IS NULL ORDER BY created_at, id", list(stories)).fetchall():
                for h in stories[str(story)]:
                    h["verdict"] = str(verdict)
        if roots:
            for match_id, alert_id in self.db.execute(
                    f"SELECT match_id, MIN(id) FROM outbox WHERE match_id IN ({','.join('?' * len(roots))}) "
                    "GROUP BY match_id", list(roots)).fetchall():
                for h in roots[int(match_id)]:
                    h["alert_id"] = int(alert_id)
