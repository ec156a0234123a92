"""Entries: what is new in a poll, edits of known entries, reposts, and ``record``, which
stores a whole poll in ONE transaction.

Entries are never deleted by a poll: a stored uid is the tombstone that keeps an item which
disappears from its feed and comes back from alerting twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .. import noise
from ..models import Article, Entry, Feed, Match
from .base import Queries
from .feeds import FeedQueries, Notice

_INSERT_MATCH = ("INSERT INTO matches (entry_id, rule_id, rule_title, story, terms, field, snippet, severity, "
                 "created_at, simhash) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(rule_id, story) DO NOTHING")
REPOST_MIN_TITLE = 25  # characters: shorter titles ("Live", "Morning briefing") recur honestly


class EntryQueries(FeedQueries, Queries):
    def sort_entries(self, feed: Feed, entries: Sequence[Entry]) -> tuple[list[Entry], list[Entry]]:
        """(new, edited): entries this feed has not stored yet, and stored entries whose title
        or text changed since; in feed order, without duplicates. Only this batch's uids are
        looked up (the UNIQUE index serves it), not the feed's history."""
        uids = list(dict.fromkeys(e.uid for e in entries))
        known: dict[str, str | None] = {}
        for i in range(0, len(uids), 500):  # well under SQLite's bound-parameter limit
            chunk = uids[i:i + 500]
            marks = ",".join("?" * len(chunk))
            for r in self._rows(f"SELECT uid, content_hash FROM entries WHERE feed_id = ? AND uid IN ({marks})",
                                [feed.id, *chunk]):
                known[r["uid"]] = r["content_hash"]
        new: list[Entry] = []
        edited: list[Entry] = []
        seen: set[str] = set()
        for e in entries:
            if e.uid in seen:
                continue
            seen.add(e.uid)
            if e.uid not in known:
                new.append(e)
            elif e.content_hash and known[e.uid] and e.content_hash != known[e.uid]:
                edited.append(e)
        return new, edited

    def unseen(self, feed: Feed, entries: Sequence[Entry]) -> list[Entry]:
        return self.sort_entries(feed, entries)[0]

    def reposts(self, feed: Feed, entries: Sequence[Entry], since: float) -> set[str]:
        """uids of new entries that repeat, under another id, a title this feed published after
        ``since``: a deleted-and-reposted item. They are stored but do not alert again."""
        out: set[str] = set()
        for e in entries:
            if len(e.title) >= REPOST_MIN_TITLE and self._rows(
                    "SELECT 1 FROM entries WHERE feed_id = ? AND title = ? AND uid != ? AND first_seen_at >= ? "
                    "LIMIT 1", [feed.id, e.title, e.uid, since]):
                out.add(e.uid)
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
        state: Mapping[str, Any],
        new: Sequence[tuple[Entry, Article | None, Sequence[Match]]],
        baseline: bool,
        feed_title: str | None = None,
        edited: Sequence[Entry] = (),
        notices: Sequence[Notice] = (),
        moved: str | None = None,
        seen: Sequence[str] = (),
    ) -> int:
        """Store one successful poll in ONE transaction: feed state (``state``: poll columns),
        new entries, their articles and matches, a pending outbox row per match and channel,
        edits of known entries (no alert) and ops notices. A crash anywhere before COMMIT
        leaves nothing; a re-run finds the same entries unseen. ``seen``: the uids this poll
        served, stamped ``last_seen_at`` (retention keeps what the feed still serves). Returns
        the alerts queued."""
        alerts = 0
        with self.transaction():
            self._save_poll(feed, state, notices, moved, now)
            if feed_title:
                self.db.execute("UPDATE feeds SET title = COALESCE(title, ?) WHERE id = ?", (feed_title, feed.id))
            for e in edited:
                self.db.execute(
                    "UPDATE entries SET title = ?, summary = ?, link = ?, published = ?, content_hash = ?, "
                    "updated_at = ? WHERE feed_id = ? AND uid = ?",
                    (e.title, e.summary, e.link, e.published, e.content_hash, now, feed.id, e.uid))
            for entry, article, matches in new:
                cur = self.db.execute(
                    "INSERT INTO entries (feed_id, uid, guid, link, title, summary, published, "
                    "content_hash, baseline, first_seen_at) VALUES (?,?,?,?,?,?,?,?,?,?) "
                    "ON CONFLICT(feed_id, uid) DO NOTHING",
                    (feed.id, entry.uid, entry.guid, entry.link, entry.title, entry.summary,
                     entry.published, entry.content_hash, int(baseline), now),
                )
                if cur.rowcount != 1:
                    continue
                entry_id = cur.lastrowid
                if article is not None:
                    self.db.execute(
                        "INSERT INTO articles (entry_id, url, title, text, language, author, "
                        "date, source, error, extracted_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                        (entry_id, article.url, article.title, article.text, article.language,
                         article.author, article.date, article.source, article.error, now),
                    )
                alerts += self._matches(entry_id, entry.link or entry.uid, matches, now, feed.id,
                                        article.text if article is not None and matches else "")
            uids = list(dict.fromkeys(seen))
            for i in range(0, len(uids), 500):  # well under SQLite's bound-parameter limit
                chunk = uids[i:i + 500]
                self.db.execute(f"UPDATE entries SET last_seen_at = ? WHERE feed_id = ? AND uid IN "
                                f"({','.join('?' * len(chunk))})", [now, feed.id, *chunk])
        return alerts

    def _matches(self, entry_id: int | None, story: str, matches: Sequence[Match], now: float,
                 feed_id: int = 0, text: str = "") -> int:
        """A match row per rule and story, and a pending outbox row per channel: an alert. The
        same story via another feed (same link) or near-identical text within
        noise.GROUP_WINDOW becomes a follow-up of the first alert instead: a match with
        ``lead_id`` and outbox rows held for the channel's next digest (store/noise.py)."""
        alerts = 0
        fp = noise.simhash(text) if text else None
        for m in matches:
            row = (entry_id, m.rule_id, m.rule_title, story, json.dumps(list(m.terms), ensure_ascii=False),
                   m.field, m.snippet, m.severity, now, fp)
            cur = self.db.execute(_INSERT_MATCH, row)
            lead = None
            if cur.rowcount == 1 and fp is not None:
                lead = noise.near(fp, self.db.execute(  # plain tuples: thousands of rows in a busy window
                    "SELECT id, simhash FROM matches WHERE rule_id = ? AND created_at >= ? AND simhash IS NOT NULL "
                    "AND lead_id IS NULL AND id != ? ORDER BY id", [m.rule_id, now - noise.GROUP_WINDOW,
                                                                    cur.lastrowid]).fetchall())
            elif cur.rowcount != 1:  # this story already alerted for this rule: another source of it?
                first = self._rows("SELECT m.id, m.lead_id, e.feed_id FROM matches m JOIN entries e ON "
                                   "e.id = m.entry_id WHERE m.rule_id = ? AND m.story = ?", [m.rule_id, story])
                if not first or first[0]["feed_id"] == feed_id:
                    continue  # the same feed again (a repost): nothing new
                lead = first[0]["lead_id"] or first[0]["id"]
                cur = self.db.execute(_INSERT_MATCH, (*row[:3], f"{story} via feed {feed_id}", *row[4:]))
                if cur.rowcount != 1:
                    continue  # this feed told this story before
            if lead is not None:
                self.db.execute("UPDATE matches SET lead_id = ? WHERE id = ?", (lead, cur.lastrowid))
            for channel in m.channels:
                self.db.execute(
                    "INSERT INTO outbox (match_id, channel, created_at, next_attempt_at, state, held) "
                    "VALUES (?,?,?,?,?,?) ON CONFLICT(match_id, channel) DO NOTHING",
                    (cur.lastrowid, channel, now, now, "pending" if lead is None else "held",
                     None if lead is None else "followup"),
                )
                alerts += lead is None
        return alerts
