"""Entries: what is new in a poll, edits of known entries, reposts, and ``record``, which
stores a whole poll in ONE transaction.

Entries are never deleted by a poll: a stored uid is the tombstone that keeps an item which
disappears from its feed and comes back from alerting twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from .. import noise
from ..models import SEVERITIES, TIERS, Article, Entry, Feed, FeedUpdate, Match
from .base import ERRORS, Queries, StoreError, environmental
from .feedback import judged_not
from .feeds import FeedQueries

_INSERT_MATCH = ("INSERT INTO matches (entry_id, rule_id, rule_title, story, terms, context, field, snippet, severity, "
                 "created_at, simhash, text_hash, primary_id, lead_id, salience, tier, features) "
                 "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
                 "ON CONFLICT(rule_id, story) DO NOTHING")
_INSERT_ENTRY = ("INSERT INTO entries (feed_id, uid, guid, link, title, summary, published, content_hash, baseline, "
                 "first_seen_at, last_seen_at) VALUES {values} ON CONFLICT(feed_id, uid) DO NOTHING")
_ENTRY_VALUES = "(?,?,?,?,?,?,?,?,?,?,?)"
ENTRY_ROWS = 500  # entries per INSERT on SQLite: 5,500 bound parameters, well under its limit of 32,766
_RANK = {s: i for i, s in enumerate(SEVERITIES)}
_TIER = {t: i for i, t in enumerate(TIERS)}
REPOST_MIN_TITLE = 25  # characters: shorter titles ("Live", "Morning briefing") recur honestly
log = logging.getLogger(__name__)


class _Poll(NamedTuple):
    """One poll as ``record`` takes it."""
    feed: Feed
    now: float
    update: FeedUpdate
    new: Sequence[tuple[Entry, Article | None, Sequence[Match]]]
    baseline: bool
    feed_title: str | None = None
    edited: Sequence[Entry] = ()
    seen: Sequence[str] = ()


def _poll(feed: Feed, *, now: float, update: FeedUpdate, new: Sequence[tuple[Entry, Article | None, Sequence[Match]]],
          baseline: bool, feed_title: str | None = None, edited: Sequence[Entry] = (),
          seen: Sequence[str] = ()) -> _Poll:
    """``record``'s arguments as one _Poll (a wrong one raises TypeError, as ``record`` would)."""
    return _Poll(feed, now, update, new, baseline, feed_title, edited, seen)


def distinct(feed: Feed, entries: Sequence[Entry]) -> list[Entry]:
    """``entries`` in feed order without a uid twice (the first kept, the others logged): what a
    feed that has stored nothing has new. Pure: the pipeline sorts a feed's first poll with it
    on the event loop, without asking the database (the transaction that stores a feed's first
    entries marks it baselined; a thousand first polls each waited ~7 ms behind the database
    thread's writes to be told that nothing was stored; issue 16 G1). Were it stored meanwhile
    by another process, ``record`` still skips what is stored."""
    out: list[Entry] = []
    seen: set[str] = set()
    for e in entries:
        if e.uid in seen:
            log.info("item dropped feed=%s uid=%s title=%r reason=%r", feed.url, e.uid, e.title[:80],
                     "the same item twice in one poll (same identity)")
            continue
        seen.add(e.uid)
        out.append(e)
    return out


class EntryQueries(FeedQueries, Queries):
    def sort_entries(self, feed: Feed, entries: Sequence[Entry]) -> tuple[list[Entry], list[Entry]]:
        """(new, edited): entries this feed has not stored yet, and stored entries whose title
        or text changed since; in feed order, without duplicates (``distinct``). Only this
        batch's uids are looked up (the UNIQUE index serves it), not the feed's history."""
        entries = distinct(feed, entries)
        known: dict[str, str | None] = {}
        for i in range(0, len(entries), 500):  # well under SQLite's bound-parameter limit
            chunk = [e.uid for e in entries[i:i + 500]]
            marks = ",".join("?" * len(chunk))
            for r in self._rows(f"SELECT uid, content_hash, title IS NULL AS tomb FROM entries WHERE feed_id = ? "
                                f"AND uid IN ({marks})", [feed.id, *chunk]):
                known[r["uid"]] = None if r["tomb"] else r["content_hash"]  # a tombstone is never "edited"
        new: list[Entry] = []
        edited: list[Entry] = []
        for e in entries:
            if e.uid not in known:
                new.append(e)
            elif e.content_hash and known[e.uid] and e.content_hash != known[e.uid]:
                edited.append(e)
        return new, edited

    def unseen(self, feed: Feed, entries: Sequence[Entry]) -> list[Entry]:
        return self.sort_entries(feed, entries)[0]

    def reposts(self, feed: Feed, entries: Sequence[Entry], since: float) -> dict[str, str]:
        """New entries that repeat, under another id, what this feed served before: the same title
        and text however long ago (a feed that moved to a new domain: every link changed), or the
        same title after ``since`` (a deleted-and-reposted item). uid -> why. They are stored
        but do not alert again."""
        out: dict[str, str] = {}
        for e in entries:
            if e.content_hash and self._rows(
                    "SELECT 1 FROM entries WHERE feed_id = ? AND content_hash = ? AND uid != ? LIMIT 1",
                    [feed.id, e.content_hash, e.uid]):
                out[e.uid] = "the same title and text as an entry this feed served before"
            elif len(e.title) >= REPOST_MIN_TITLE and self._rows(
                    "SELECT 1 FROM entries WHERE feed_id = ? AND title = ? AND uid != ? AND first_seen_at >= ? "
                    "LIMIT 1", [feed.id, e.title, e.uid, since]):
                out[e.uid] = "a title this feed served within the repost window"
        return out

    def page_article(self, url: str) -> Article | None:
        """The article already extracted from this (canonical) URL's page, if any: the same
        story reached through another feed is fetched and extracted once."""
        rows = self._rows(
            "SELECT url, title, text, language, author, date FROM articles "
            "WHERE url = ? AND source = 'page' ORDER BY extracted_at DESC LIMIT 1", [url])
        if not rows:
            return None
        r = rows[0]
        return Article(title=r["title"] or "", text=r["text"] or "", url=r["url"],
                       language=r["language"], author=r["author"], date=r["date"], source="page")

    def stored_articles(self, since: float) -> Iterator[tuple[dict, Article]]:
        """Every stored article of an entry first seen at or after ``since``, oldest first,
        with its entry and feed (``monitor rules test``). Read in pages, not all at once."""
        last = 0
        while True:
            rows = self._rows(
                "SELECT e.id, e.title AS entry_title, e.summary, e.link, e.published, e.first_seen_at, "
                "f.url AS feed_url, f.title AS feed_title, f.tags, a.url, a.title, a.text, a.language, "
                "a.author, a.date, a.source FROM entries e JOIN articles a ON a.entry_id = e.id "
                "JOIN feeds f ON f.id = e.feed_id WHERE e.first_seen_at >= ? AND e.id > ? "
                "ORDER BY e.id LIMIT 500", (since, last))
            if not rows:
                return
            for r in rows:
                last = r["id"]
                article = Article(title=r["title"] or r["entry_title"] or "", text=r["text"] or "",
                                  summary=r["summary"] or "", url=r["url"] or r["link"], language=r["language"],
                                  author=r["author"], date=r["date"] or r["published"], source=r["source"])
                yield r, article

    def record(
        self,
        feed: Feed,
        *,
        now: float,
        update: FeedUpdate,
        new: Sequence[tuple[Entry, Article | None, Sequence[Match]]],
        baseline: bool,
        feed_title: str | None = None,
        edited: Sequence[Entry] = (),
        seen: Sequence[str] = (),
    ) -> int:
        """Store one successful poll in ONE transaction: the feed's ``update`` (its columns, a
        move, its ops notices), new entries, their articles and matches, an outbox row per story
        and channel (held as 'backlog' on a feed's first poll, ``baseline``; an entry of it
        without an article is its silent baseline) and edits of known entries (no alert). A crash anywhere before COMMIT
        leaves nothing; a re-run finds the same entries unseen. ``seen``: the uids this poll
        served, stamped ``last_seen_at`` (retention keeps what the feed still serves). Returns
        the alerts queued."""
        with self._transaction():
            return self._record([_Poll(feed, now, update, new, baseline, feed_title, edited, seen)])[0]

    def record_many(self, polls: Sequence[tuple[tuple[Any, ...], dict[str, Any]]]) -> list[int | Exception]:
        """``record`` for each of several polls, ``(args, kwargs)``, in ONE transaction: a group
        commit (the database thread records the polls that queued while it wrote the last group,
        store/aio.py), their new entries inserted together. Each poll's alerts, or the exception
        its ``record`` raised. A failure of the database (locked, full) raises StoreError for the
        whole group, none of it written, as ``record`` would for one poll; a bug in one poll
        rolls the group back and the polls are recorded again one by one, so that only that
        poll fails. Why: at a first poll of 1,000 feeds, a commit per poll was a quarter of the
        database thread's time, and every commit, and every statement that inserts entries,
        writes a new full-text index segment to merge later (issue 16, G1)."""
        if len(polls) == 1:  # its failure, whatever it is, is raised as ``record`` raises it
            args, kw = polls[0]
            return [self.record(*args, **kw)]
        try:
            with self._transaction():
                return list(self._record([_poll(*args, **kw) for args, kw in polls]))
        except Exception as e:
            if isinstance(e, StoreError) or isinstance(e, ERRORS) and environmental(e):
                raise  # the database failed (the COMMIT too may fail on a full disk): all of it
            log.debug("group of polls rolled back, recorded one by one", exc_info=True)
        done: list[int | Exception] = []
        for args, kw in polls:
            try:
                done.append(self.record(*args, **kw))
            except Exception as e:  # noqa: BLE001 - handed to that poll's caller
                done.append(e)
        return done

    def _record(self, polls: Sequence[_Poll]) -> list[int]:
        """``record``'s work for each of ``polls``, inside the caller's transaction: first each
        feed's row, then every poll's new entries in as few statements as ENTRY_ROWS allows, then
        each poll's articles, matches and outbox rows, in the polls' order. The alerts of each."""
        for p in polls:
            self._save_poll(p.feed, p.update, p.now)
            if p.feed_title:
                self.db.execute("UPDATE feeds SET title = COALESCE(title, ?) WHERE id = ?", (p.feed_title, p.feed.id))
            for e in p.edited:
                self.db.execute(
                    "UPDATE entries SET title = ?, summary = ?, link = ?, published = ?, content_hash = ?, "
                    "updated_at = ? WHERE feed_id = ? AND uid = ?",
                    (e.title, e.summary, e.link, e.published, e.content_hash, p.now, p.feed.id, e.uid))
        ids = self._insert_entries(polls)
        out = []
        for p in polls:
            alerts = 0
            fid = p.feed.id
            # the entries inserted above are stamped already: not looked up again below (a feed's
            # first poll: every uid it serves; 0.1 s of 1.2 s of database CPU over 1,000 new
            # feeds, issue 16 G1)
            uids = [u for u in dict.fromkeys(p.seen) if (fid, u) not in ids]
            for entry, article, matches in p.new:
                entry_id = ids.pop((fid, entry.uid), None)
                if entry_id is None:  # stored already (another process, or twice in ``new``)
                    continue
                if article is not None:
                    self.db.execute(
                        "INSERT INTO articles (entry_id, url, title, text, language, author, "
                        "date, source, error, extracted_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                        (entry_id, article.url, article.title, article.text, article.language,
                         article.author, article.date, article.source, article.error, p.now),
                    )
                if matches:
                    alerts += self._matches(entry_id, entry.story, matches, p.now, fid,
                                            article.text if article is not None else "",
                                            hold="backlog" if p.baseline else None)
            for i in range(0, len(uids), 500):  # well under SQLite's bound-parameter limit
                chunk = uids[i:i + 500]
                # rows stamped already (last_seen_at = now) are not written twice
                self.db.execute(f"UPDATE entries SET last_seen_at = ? WHERE feed_id = ? AND uid IN "
                                f"({','.join('?' * len(chunk))}) AND (last_seen_at IS NULL OR last_seen_at != ?)",
                                [p.now, fid, *chunk, p.now])
            out.append(alerts)
        return out

    def _insert_entries(self, polls: Sequence[_Poll]) -> dict[tuple[int, str], int]:
        """Insert the polls' new entries; (feed id, uid) -> id of each row this call made (an entry
        stored already is skipped: ON CONFLICT DO NOTHING). On SQLite, ENTRY_ROWS rows per
        statement, whatever poll they come from: the full-text index's insert trigger then runs
        inside one statement for all of them, and FTS5's cost is mostly per statement (it writes
        a segment at each; a first poll of 1,000 feeds, 59,000 entries: 2.2 s of database work one
        row per statement, 1.2 s in batches; issue 16, G2). An entry its poll served (``seen``) is
        stamped ``last_seen_at`` as it is inserted."""
        rows = []
        for p in polls:
            seen = set(p.seen)
            rows += [(p.feed.id, entry.uid, entry.guid, entry.link, entry.title, entry.summary, entry.published,
                      entry.content_hash, int(p.baseline and article is None), p.now,
                      p.now if entry.uid in seen else None) for entry, article, _ in p.new]
        ids: dict[tuple[int, str], int] = {}
        if self.dialect != "sqlite":  # PostgreSQL's adapter hands back one id per INSERT (pg.py)
            for row in rows:
                cur = self.db.execute(_INSERT_ENTRY.format(values=_ENTRY_VALUES), row)
                if cur.rowcount == 1 and cur.lastrowid is not None:
                    ids.setdefault((int(row[0]), str(row[1])), cur.lastrowid)
            return ids
        for i in range(0, len(rows), ENTRY_ROWS):
            chunk = rows[i:i + ENTRY_ROWS]
            sql = _INSERT_ENTRY.format(values=",".join([_ENTRY_VALUES] * len(chunk))) + " RETURNING feed_id, uid, id"
            ids.update(((f, u), made) for f, u, made in self.db.execute(sql, [v for row in chunk for v in row]))
        return ids

    def _matches(self, entry_id: int | None, story: str, matches: Sequence[Match], now: float,
                 feed_id: int = 0, text: str = "", hold: str | None = None) -> int:
        """One story, one alert per channel (issue 14). Every rule that fired on the entry gets a
        match row; the most severe (then the first) is the story's *primary*, the others travel
        in its alert (``primary_id``), and only the primary has outbox rows: one per channel that
        any of the rules routes to. A story told before (``_told``: the same key from another
        feed, or the same text within noise.GROUP_WINDOW, whatever rule alerted it) makes this a
        *follow-up*: its rows carry ``lead_id`` and are held for the channel's next digest
        (store/noise.py). ``hold``: a new story's rows wait for a digest too, with this reason
        ('backlog': found on a feed's first poll). Returns the alerts queued.

        Tiers (issue 17): only rules whose match is at tier 'alert' make the story an alert, and
        the primary is the most severe of them; a story whose best tier is 'digest' gets held
        'mention' rows on its digest-tier rules' channels (the channel's next digest lists it
        under "Also mentioned"); at 'store' every match row is kept (searchable, backtestable)
        and no outbox row is made.

        A follow-up of a story that the team judged not relevant (``feedback.judged_not``) makes
        no outbox row for the rules judged so: the story's other sources are stored, not sent."""
        if not matches:
            return 0
        # stable: the first among equals; the best tier, then the most severe, leads
        ordered = sorted(matches, key=lambda m: (-_TIER.get(m.tier, 2), -_RANK.get(m.severity, 1)))
        best = ordered[0].tier if ordered[0].tier in _TIER else "alert"
        fp = noise.simhash(text) if text else None
        th = noise.text_hash(text) if text and fp is None else None
        # nodes recording the same story at once (by key or near-identical text): one tells it,
        # the other finds it told; one lock for every story, held only by polls with matches
        self._serial("stories")
        lead, repost = self._told(story, fp, th, now, feed_id)
        primary: int | None = None
        for m in ordered:
            row = [entry_id, m.rule_id, m.rule_title, story, json.dumps(list(m.terms), ensure_ascii=False),
                   json.dumps(list(m.context), ensure_ascii=False), m.field, m.snippet, m.severity, now, fp, th,
                   primary, lead, m.salience, m.tier, json.dumps([list(f) for f in m.features])]
            cur = self.db.execute(_INSERT_MATCH, row)
            if cur.rowcount != 1 and not repost:  # this rule told the story from another feed: one more source
                row[3] = f"{story} via feed {feed_id}"
                cur = self.db.execute(_INSERT_MATCH, row)
            if cur.rowcount != 1:
                log.info("match not stored again rule=%s story=%s reason=%r", m.rule_id, story,
                         "this feed told this story before")
                continue
            primary = primary or cur.lastrowid
        if primary is None or repost:
            if primary is not None:
                log.info("story told before by this feed, no alert story=%s lead=%s", story, lead)
            return 0
        judged = judged_not(self.db, lead) if lead is not None else set()
        if judged:  # another source of a story the team judged not relevant: not sent for those rules
            log.info("follow-up not sent story=%s lead=%s rules=%s reason=%r", story, lead, ",".join(sorted(judged)),
                     "the team judged the story not relevant")
            ordered = [m for m in ordered if m.rule_id not in judged]
            if not ordered:
                return 0
            best = ordered[0].tier if ordered[0].tier in _TIER else "alert"
        if best == "store":
            log.info("match stored only story=%s rule=%s salience=%s", story, ordered[0].rule_id,
                     ordered[0].salience)
            return 0
        if best == "digest":  # a mention: held for the channel's digest (noise.release)
            hold = "mention"
        channels: dict[str, list[str]] = {}  # channel -> the rules that route the story there
        for m in ordered:
            if m.tier == best or m.tier not in _TIER:
                for ch in m.channels:
                    channels.setdefault(ch, []).append(m.rule_id)
        for channel, routed in channels.items():
            self.db.execute(
                "INSERT INTO outbox (match_id, channel, created_at, next_attempt_at, state, held, rules) "
                "VALUES (?,?,?,?,?,?,?) ON CONFLICT(match_id, channel) DO NOTHING",
                (primary, channel, now, now, "pending" if lead is None and hold is None else "held",
                 hold if lead is None else "followup", json.dumps(routed)))
        return len(channels) if lead is None and best == "alert" else 0

    def _told(self, story: str, fp: int | None, th: str | None, now: float, feed_id: int) -> tuple[int | None, bool]:
        """Was this story told before, by any rule? (the primary match of its first alert or None,
        whether this very feed told it: a repost, stored and not sent). The same story key (the
        canonical link) however long ago; else a near-identical text (SimHash) or the same short
        text (``text_hash``) within noise.GROUP_WINDOW."""
        first = self._rows("SELECT m.id, m.lead_id, m.primary_id, e.feed_id FROM matches m JOIN entries e "
                           "ON e.id = m.entry_id WHERE m.story = ? ORDER BY m.id LIMIT 1", [story])
        if first:
            r = first[0]
            return r["lead_id"] or r["primary_id"] or r["id"], r["feed_id"] == feed_id
        since = now - noise.GROUP_WINDOW
        if fp is not None:  # plain tuples: thousands of rows in a busy window
            return noise.near(fp, self.db.execute(
                "SELECT id, simhash FROM matches WHERE created_at >= ? AND lead_id IS NULL AND primary_id IS NULL "
                "AND simhash IS NOT NULL ORDER BY id", [since]).fetchall()), False
        if th is not None:
            row = self.db.execute("SELECT id FROM matches WHERE text_hash = ? AND created_at >= ? AND lead_id IS NULL "
                                  "AND primary_id IS NULL ORDER BY id LIMIT 1", [th, since]).fetchone()
            return (row[0] if row else None), False
        return None, False
