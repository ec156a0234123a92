"""The schema as a list of migrations: index i+1 is schema version i+1 (PRAGMA user_version).
Never edit a released migration; append a new one. A migration is SQL (statements separated
by ";") or a function of the connection, for data that SQL alone cannot compute."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from .schema_shared import SHARED
from .steps import fill_hosts, group_stories

MIGRATIONS: list[str | Callable[[sqlite3.Connection], None]] = [
    """
    CREATE TABLE feeds (
        id INTEGER PRIMARY KEY,
        url TEXT NOT NULL UNIQUE,
        title TEXT,
        origin TEXT NOT NULL DEFAULT 'config',     -- config | cli
        active INTEGER NOT NULL DEFAULT 1,
        interval_s REAL,                            -- NULL: the configured default
        etag TEXT,
        last_modified TEXT,
        body_hash TEXT,
        next_check_at REAL NOT NULL DEFAULT 0,
        last_polled_at REAL,
        last_ok_at REAL,
        last_status TEXT,                           -- ok | not-modified | error
        last_error_kind TEXT,
        last_error TEXT,
        error_count INTEGER NOT NULL DEFAULT 0,
        baselined_at REAL,                          -- first successful parse
        created_at REAL NOT NULL
    );
    CREATE INDEX feeds_due ON feeds(active, next_check_at);
    CREATE TABLE entries (
        id INTEGER PRIMARY KEY,
        feed_id INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
        uid TEXT NOT NULL,
        guid TEXT,
        link TEXT,
        title TEXT,
        summary TEXT,
        published TEXT,
        content_hash TEXT,
        baseline INTEGER NOT NULL DEFAULT 0,        -- seen on the feed's first poll: no alert
        first_seen_at REAL NOT NULL,
        UNIQUE (feed_id, uid)
    );
    CREATE TABLE articles (
        entry_id INTEGER PRIMARY KEY REFERENCES entries(id) ON DELETE CASCADE,
        url TEXT,
        title TEXT,
        text TEXT,
        language TEXT,
        author TEXT,
        date TEXT,
        source TEXT NOT NULL,                       -- page | feed-content | feed-summary
        error TEXT,                                 -- why the page was not used
        extracted_at REAL NOT NULL
    );
    CREATE TABLE matches (
        id INTEGER PRIMARY KEY,
        entry_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
        rule_id TEXT NOT NULL,
        rule_title TEXT,
        story TEXT NOT NULL,                        -- canonical link, else entry identity
        terms TEXT NOT NULL,                        -- JSON list
        field TEXT,
        snippet TEXT,
        created_at REAL NOT NULL,
        UNIQUE (rule_id, story)                     -- one alert per rule and story, ever
    );
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        match_id INTEGER NOT NULL REFERENCES matches(id) ON DELETE CASCADE,
        channel TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',      -- pending | sent
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        next_attempt_at REAL NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        sent_at REAL,
        UNIQUE (match_id, channel)
    );
    CREATE INDEX outbox_due ON outbox(state, next_attempt_at);
    """,
    # 2: find an already extracted page by its canonical URL (one extraction per story).
    """
    CREATE INDEX articles_url ON articles(url);
    """,
    # 3: polling that follows its feeds (issue 3). ``source_url`` is the address as configured or
    # added (how the config finds its row again); ``url`` follows permanent redirects. Entries
    # remember when an edit was last seen; ops notices (feed failing / recovered / gone) get
    # their own outbox until the alert outbox is generalised.
    """
    ALTER TABLE feeds ADD COLUMN source_url TEXT;
    UPDATE feeds SET source_url = url;
    CREATE UNIQUE INDEX feeds_source ON feeds(source_url);
    ALTER TABLE feeds ADD COLUMN host TEXT NOT NULL DEFAULT '';
    CREATE INDEX feeds_host ON feeds(host);
    ALTER TABLE feeds ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE feeds ADD COLUMN cadence_s REAL;
    ALTER TABLE feeds ADD COLUMN last_new_at REAL;
    ALTER TABLE feeds ADD COLUMN failing_since REAL;
    ALTER TABLE feeds ADD COLUMN gone_at REAL;
    ALTER TABLE feeds ADD COLUMN alerted_failing INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE feeds ADD COLUMN moved_from TEXT;
    ALTER TABLE entries ADD COLUMN updated_at REAL;
    CREATE TABLE notices (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,                         -- failing | recovered | gone
        feed_id INTEGER REFERENCES feeds(id) ON DELETE CASCADE,
        channel TEXT NOT NULL,
        title TEXT NOT NULL,
        body TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',      -- pending | sent
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        next_attempt_at REAL NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        sent_at REAL
    );
    CREATE INDEX notices_due ON notices(state, next_attempt_at);
    """,
    lambda conn: fill_hosts(conn),
    # 5: the daemon's heartbeat (issue 6), one row: `monitor status` and /healthz read when the
    # scheduler last ticked; a restart overwrites it.
    """
    CREATE TABLE daemon (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        pid INTEGER NOT NULL,
        started_at REAL NOT NULL,
        last_tick_at REAL,
        stopped_at REAL
    );
    """,
    # 6: delivery states (issue 5). outbox.state: pending | sending | sent | failed | dead.
    # ``claimed_at``: when a sender took the row ('sending'); a crash leaves it as evidence and
    # the next start puts it back. ``last_status``: the service's last HTTP status, if any.
    # ``notices.kind`` gains 'alert-dead' (feed_id NULL): an alert given up on, for the ops channels.
    # The queue index covers only undelivered rows: years of sent alerts cost it nothing.
    """
    ALTER TABLE outbox ADD COLUMN claimed_at REAL;
    ALTER TABLE outbox ADD COLUMN last_status INTEGER;
    ALTER TABLE outbox ADD COLUMN last_attempt_at REAL;
    ALTER TABLE outbox ADD COLUMN dead_at REAL;
    ALTER TABLE outbox ADD COLUMN revived_at REAL;              -- `alerts retry`: max_age counts from here
    CREATE INDEX outbox_queue ON outbox(channel, id) WHERE state IN ('pending', 'sending', 'failed');
    CREATE INDEX outbox_state ON outbox(state, id);
    """,
    # 7: retention (issue 6, store/retention.py). ``last_seen_at``: the last parsed poll that
    # still served the entry (a poll stamps all its entries with one time, so a feed's MAX is its
    # last poll; NULL: not seen since the upgrade). Old entries become tombstones (title NULL,
    # ``entries_live`` skips them); a tombstone goes once its feed stopped serving it long ago.
    # ``matches_entry``: deleting an entry cascades to its matches without a table scan.
    """
    ALTER TABLE entries ADD COLUMN last_seen_at REAL;
    CREATE INDEX entries_seen ON entries(feed_id, last_seen_at);
    CREATE INDEX entries_age ON entries(first_seen_at);
    CREATE INDEX entries_live ON entries(first_seen_at) WHERE title IS NOT NULL;
    CREATE INDEX matches_entry ON matches(entry_id);
    """,
    # 8: severity travels with the alert (issue 5): the rule's, as it was when the match was made.
    """
    ALTER TABLE matches ADD COLUMN severity TEXT NOT NULL DEFAULT 'normal';
    """,
    # 9: noise control (issue 5, monitor/noise.py). ``matches.lead_id``: this match is a follow-up
    # (the same story via another feed, or near-identical text) of that one; ``simhash``: of
    # the article's text, for finding near-identical stories. ``outbox.held``: why a row waits
    # for a digest (quiet | digest | rate | followup, state 'held'); ``digest_id``: the carrier
    # row whose one message lists it (state 'digest' until the carrier is sent); ``digest_at``:
    # on a carrier, when the digest was put together.
    """
    ALTER TABLE matches ADD COLUMN lead_id INTEGER;
    ALTER TABLE matches ADD COLUMN simhash INTEGER;
    CREATE INDEX matches_lead ON matches(lead_id) WHERE lead_id IS NOT NULL;
    CREATE INDEX matches_recent ON matches(rule_id, created_at) WHERE simhash IS NOT NULL;
    ALTER TABLE outbox ADD COLUMN held TEXT;
    ALTER TABLE outbox ADD COLUMN digest_id INTEGER;
    ALTER TABLE outbox ADD COLUMN digest_at REAL;
    CREATE INDEX outbox_held ON outbox(channel, id) WHERE state = 'held';
    CREATE INDEX outbox_members ON outbox(digest_id) WHERE digest_id IS NOT NULL;
    CREATE INDEX outbox_sent ON outbox(channel, sent_at) WHERE state = 'sent';
    """,
    # 10: one story, one alert per channel (issue 14). ``matches.primary_id``: this match travels
    # in that match's alert (another rule that fired on the same entry); only a story's primary
    # match has outbox rows, and the message names every rule of its group. ``lead_id`` now also
    # ties a later match of *another* rule on an already alerted story to that story's first
    # alert (a follow-up). ``context``: the rule's context words (JSON list), apart from the
    # topic's own ``terms``. ``text_hash``: an exact fingerprint of a text too short for a SimHash,
    # so the same short text at two URLs is one story. ``matches_story`` finds a story by its key
    # whatever rule told it; ``matches_roots``: recent alerts' fingerprints, any rule.
    """
    ALTER TABLE matches ADD COLUMN primary_id INTEGER;
    ALTER TABLE matches ADD COLUMN context TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE matches ADD COLUMN text_hash TEXT;
    CREATE INDEX matches_primary ON matches(primary_id) WHERE primary_id IS NOT NULL;
    CREATE INDEX matches_story ON matches(story);
    CREATE INDEX matches_roots ON matches(created_at) WHERE lead_id IS NULL AND primary_id IS NULL;
    CREATE INDEX matches_text ON matches(text_hash, created_at) WHERE text_hash IS NOT NULL;
    CREATE INDEX entries_text ON entries(feed_id, content_hash);
    """,
    lambda conn: group_stories(conn),
    # 12: leases (issue 15, monitor/leases.py). A claimed alert ('sending') and a feed being
    # polled carry their owner (host:pid:token) and when the claim runs out; another process
    # takes over only an expired lease, and nobody resets a live owner's work at start-up.
    """
    ALTER TABLE outbox ADD COLUMN lease_owner TEXT;
    ALTER TABLE outbox ADD COLUMN lease_until REAL;
    ALTER TABLE feeds ADD COLUMN lease_owner TEXT;
    ALTER TABLE feeds ADD COLUMN lease_until REAL;
    CREATE INDEX outbox_leased ON outbox(lease_owner) WHERE state = 'sending';
    """,
    # 13: salience and tiers (issue 17, monitor/rules/salience.py). Every match keeps how much its
    # article is about the topic, the tier that decided its outbox rows (alert | digest | store)
    # and the features (JSON pairs) that explain it. Older matches alerted: 1.0, 'alert', none.
    """
    ALTER TABLE matches ADD COLUMN salience REAL NOT NULL DEFAULT 1.0;
    ALTER TABLE matches ADD COLUMN tier TEXT NOT NULL DEFAULT 'alert';
    ALTER TABLE matches ADD COLUMN features TEXT NOT NULL DEFAULT '[]';
    """,
    # 14: the team's feedback (issue 17, store/feedback.py). One row per verdict given
    # on a story: who, when, relevant or not, a note, the story's primary match; a later verdict
    # of the same person on the same story marks theirs ``replaced_at`` (kept: the history and
    # monitor_feedback_total count every verdict given). ``feedback_rules``: every rule of the
    # story with its own match, so a learner reads per rule. ``feedback_links``: the hashes of
    # link tokens used, so each link records once.
    """
    CREATE TABLE feedback (
        id INTEGER PRIMARY KEY,
        story TEXT NOT NULL,                        -- matches.story of the alert's primary match
        match_id INTEGER REFERENCES matches(id) ON DELETE SET NULL,  -- that primary match
        alert_id INTEGER NOT NULL,                  -- the outbox row it was given on (no FK: pruned)
        verdict TEXT NOT NULL,                      -- relevant | not
        given_by TEXT NOT NULL,                     -- a name (--by, the OS user) or link:CHANNEL
        via TEXT NOT NULL,                          -- cli | link
        note TEXT,
        created_at REAL NOT NULL,
        replaced_at REAL                            -- a later verdict of the same person on the story
    );
    CREATE UNIQUE INDEX feedback_current ON feedback(story, given_by) WHERE replaced_at IS NULL;
    CREATE INDEX feedback_story ON feedback(story);
    CREATE INDEX feedback_match ON feedback(match_id);  -- retention's ON DELETE SET NULL finds rows by it
    CREATE TABLE feedback_rules (
        feedback_id INTEGER NOT NULL REFERENCES feedback(id) ON DELETE CASCADE,
        rule_id TEXT NOT NULL,
        match_id INTEGER REFERENCES matches(id) ON DELETE SET NULL,  -- this rule's match of the story
        PRIMARY KEY (feedback_id, rule_id)
    );
    CREATE INDEX feedback_rules_rule ON feedback_rules(rule_id);
    CREATE INDEX feedback_rules_match ON feedback_rules(match_id);
    CREATE TABLE feedback_links (
        token TEXT PRIMARY KEY,                     -- sha256 of the used token
        alert_id INTEGER NOT NULL,
        verdict TEXT NOT NULL,
        used_at REAL NOT NULL,
        expires_at REAL NOT NULL                    -- refused anyway after this: the row may go then
    );
    """,
    # 15: rules that learn (issue 17, learn.py,
    # store/learning.py). One row per rule: its current model as canonical JSON (learn.Model.dumps),
    # trained or not (too little feedback: the rule keeps its plain salience), when and on how
    # many judged matches. A retraining replaces the row: the model is a function of the feedback.
    """
    CREATE TABLE rule_models (
        rule_id TEXT PRIMARY KEY,
        trained_at REAL NOT NULL,
        examples INTEGER NOT NULL,                  -- judged matches it was trained on
        positives INTEGER NOT NULL,                 -- of which relevant
        trained INTEGER NOT NULL,                   -- 0: too little feedback, plain salience kept
        model TEXT NOT NULL                         -- learn.Model.dumps()
    );
    """,
    # 16: the web console (issue 18, store/console.py, store/users.py). ``users``: who may sign in
    # to the console, as viewer or editor, with an argon2 hash (monitor/passwords.py); names are
    # unique whatever their case. ``feeds.paused_at``: paused from the console, never due nor
    # claimed until resumed; the config's sync leaves it alone. The inbox needs no new index: it
    # walks matches by id newest first checking UNIQUE(match_id, channel), and a rule, a rare
    # state or a verdict is found through UNIQUE(rule_id, story), outbox_state, feedback_story
    # (query plans and timings on 100,000 articles: bench/console_store.py, issue 18 note).
    """
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
        role TEXT NOT NULL CHECK (role IN ('viewer', 'editor')),
        password_hash TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    ALTER TABLE feeds ADD COLUMN paused_at REAL;
    """,
    # 17: full-text search (issue 18, store/search.py): FTS5 over ``search_text``, a view giving
    # each live entry's indexed text: its article's title and extracted text, else the entry's
    # title and summary (a tombstone, title NULL, is not indexed). External content: the text is
    # stored once, in entries and articles, and the index holds only tokens. Triggers keep it in
    # sync for every writer (record, edits, retention, cascades from a deleted feed): before a
    # change, the row the view shows is deleted from the index ('delete' with those very values);
    # after it, the row the view now shows is added. SQLite 3.40 has no contentless_delete.
    """
    CREATE VIEW search_text AS SELECT e.id AS entry_id, COALESCE(NULLIF(a.title, ''), e.title) AS title,
        CASE WHEN a.entry_id IS NULL THEN e.summary ELSE a.text END AS body
        FROM entries e LEFT JOIN articles a ON a.entry_id = e.id WHERE e.title IS NOT NULL;
    CREATE VIRTUAL TABLE search_fts USING fts5(title, body, content = 'search_text', content_rowid = 'entry_id',
        tokenize = 'unicode61 remove_diacritics 2');
    INSERT INTO search_fts (search_fts, rank) VALUES ('rank', 'bm25(10.0, 1.0)');
    CREATE TRIGGER search_entry_ai AFTER INSERT ON entries BEGIN
        INSERT INTO search_fts (rowid, title, body) SELECT entry_id, title, body FROM search_text
        WHERE entry_id = new.id; END;
    CREATE TRIGGER search_entry_bu BEFORE UPDATE OF title, summary ON entries BEGIN
        INSERT INTO search_fts (search_fts, rowid, title, body) SELECT 'delete', entry_id, title, body
        FROM search_text WHERE entry_id = old.id; END;
    CREATE TRIGGER search_entry_au AFTER UPDATE OF title, summary ON entries BEGIN
        INSERT INTO search_fts (rowid, title, body) SELECT entry_id, title, body FROM search_text
        WHERE entry_id = new.id; END;
    CREATE TRIGGER search_entry_bd BEFORE DELETE ON entries BEGIN
        INSERT INTO search_fts (search_fts, rowid, title, body) SELECT 'delete', entry_id, title, body
        FROM search_text WHERE entry_id = old.id; END;
    CREATE TRIGGER search_article_bi BEFORE INSERT ON articles BEGIN
        INSERT INTO search_fts (search_fts, rowid, title, body) SELECT 'delete', entry_id, title, body
        FROM search_text WHERE entry_id = new.entry_id; END;
    CREATE TRIGGER search_article_ai AFTER INSERT ON articles BEGIN
        INSERT INTO search_fts (rowid, title, body) SELECT entry_id, title, body FROM search_text
        WHERE entry_id = new.entry_id; END;
    CREATE TRIGGER search_article_bu BEFORE UPDATE OF title, text ON articles BEGIN
        INSERT INTO search_fts (search_fts, rowid, title, body) SELECT 'delete', entry_id, title, body
        FROM search_text WHERE entry_id = old.entry_id; END;
    CREATE TRIGGER search_article_au AFTER UPDATE OF title, text ON articles BEGIN
        INSERT INTO search_fts (rowid, title, body) SELECT entry_id, title, body FROM search_text
        WHERE entry_id = new.entry_id; END;
    CREATE TRIGGER search_article_bd BEFORE DELETE ON articles BEGIN
        INSERT INTO search_fts (search_fts, rowid, title, body) SELECT 'delete', entry_id, title, body
        FROM search_text WHERE entry_id = old.entry_id; END;
    CREATE TRIGGER search_article_ad AFTER DELETE ON articles BEGIN
        INSERT INTO search_fts (rowid, title, body) SELECT entry_id, title, body FROM search_text
        WHERE entry_id = old.entry_id; END;
    INSERT INTO search_fts (search_fts) VALUES ('rebuild');
    """,
    # 18: a verdict on a story that never alerted (issue 17/18: "this should have alerted", given
    # on a match stored only or held for the digest, from the console's search or `monitor
    # feedback --match`): feedback.alert_id may be NULL. SQLite cannot drop a NOT NULL, so the
    # table is rebuilt; feedback_rules (whose rows would go with it, ON DELETE CASCADE) is set
    # aside first and put back after, rows and ids unchanged.
    """
    CREATE TABLE feedback_rules_kept AS SELECT feedback_id, rule_id, match_id FROM feedback_rules;
    DROP TABLE feedback_rules;
    CREATE TABLE feedback_next (
        id INTEGER PRIMARY KEY,
        story TEXT NOT NULL,                        -- matches.story of the story's primary match
        match_id INTEGER REFERENCES matches(id) ON DELETE SET NULL,  -- that primary match
        alert_id INTEGER,                           -- the outbox row it was given on (no FK: pruned);
                                                    -- NULL: given on a story that did not alert
        verdict TEXT NOT NULL,                      -- relevant | not
        given_by TEXT NOT NULL,                     -- a name (--by, the OS user) or link:CHANNEL
        via TEXT NOT NULL,                          -- cli | link | console
        note TEXT,
        created_at REAL NOT NULL,
        replaced_at REAL                            -- a later verdict of the same person on the story
    );
    INSERT INTO feedback_next (id, story, match_id, alert_id, verdict, given_by, via, note, created_at, replaced_at)
        SELECT id, story, match_id, alert_id, verdict, given_by, via, note, created_at, replaced_at FROM feedback;
    DROP TABLE feedback;
    ALTER TABLE feedback_next RENAME TO feedback;
    CREATE UNIQUE INDEX feedback_current ON feedback(story, given_by) WHERE replaced_at IS NULL;
    CREATE INDEX feedback_story ON feedback(story);
    CREATE INDEX feedback_match ON feedback(match_id);
    CREATE TABLE feedback_rules (
        feedback_id INTEGER NOT NULL REFERENCES feedback(id) ON DELETE CASCADE,
        rule_id TEXT NOT NULL,
        match_id INTEGER REFERENCES matches(id) ON DELETE SET NULL,  -- this rule's match of the story
        PRIMARY KEY (feedback_id, rule_id)
    );
    INSERT INTO feedback_rules (feedback_id, rule_id, match_id)
        SELECT feedback_id, rule_id, match_id FROM feedback_rules_kept;
    DROP TABLE feedback_rules_kept;
    CREATE INDEX feedback_rules_rule ON feedback_rules(rule_id);
    CREATE INDEX feedback_rules_match ON feedback_rules(match_id);
    """,
    *SHARED,  # 19 on: written once for both engines (schema_shared.py)
]
