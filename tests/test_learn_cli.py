"""``monitor rules learn`` and ``monitor rules test`` on the team's feedback (issue 17), through the
real CLI in a subprocess on a real database written by the Store."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from conftest import run_cli, write_config
from test_learn import ABOUT, PASSING

from monitor.models import Article, Entry, FeedUpdate, Match
from monitor.store import Store

CHANNELS = {"ops": ["json://127.0.0.1:9/x"]}
# Stand-in for the feedback tables of migration 14 (another branch of issue 17), created only
# where the store does not have them yet: the same columns that store/learning.py reads.
FEEDBACK_STAND_IN = """
CREATE TABLE IF NOT EXISTS feedback (id INTEGER PRIMARY KEY, story TEXT NOT NULL, match_id INTEGER,
    alert_id INTEGER NOT NULL, verdict TEXT NOT NULL, given_by TEXT NOT NULL, via TEXT NOT NULL, note TEXT,
    created_at REAL NOT NULL, replaced_at REAL);
CREATE TABLE IF NOT EXISTS feedback_rules (feedback_id INTEGER NOT NULL, rule_id TEXT NOT NULL,
    match_id INTEGER, PRIMARY KEY (feedback_id, rule_id));
"""


def fill(db: Path, about: int, passing: int, judged: int | None = None) -> None:
    """``about`` articles about Kursk and ``passing`` that mention it in passing, each matched by
    the rule kursk and stored by Store.record; the first ``judged`` of each judged by the team
    (about: relevant, passing: not), one passing article judged twice (a tie: the later wins)."""
    now = time.time()
    store = Store(db)
    try:
        store.sync_feeds([("https://news.example/rss", "News", None, ())], now)
        feed = store.feeds()[0]
        new = []
        for i in range(about + passing):
            text = f"{ABOUT[i % 4]} report {i}" if i < about else f"{PASSING[i % 4]} item {i}"
            link = f"https://example.org/{i}"
            field = "title" if i < about else "body"
            entry = Entry(uid=str(i), title=text[:40], link=link, summary="", content="", published=None)
            match = Match("kursk", "Kursk", ("Kursk",), field, text, ("ops",))
            new.append((entry, Article(title=text[:40], text=text, url=link, language="en", source="page"),
                        (match,)))
        store.record(feed, now=now - 3600, update=FeedUpdate(), new=new, baseline=False)
        give = getattr(store, "give_feedback", None)
        rows = store.db.execute("SELECT m.id, m.story, o.id, e.uid FROM matches m JOIN entries e ON e.id = m.entry_id "
                                "JOIN outbox o ON o.match_id = m.id ORDER BY m.id").fetchall()
    finally:
        store.close()
    verdicts = []
    for match_id, story, alert_id, uid in rows:
        i = int(uid)
        limit = judged if judged is not None else max(about, passing)
        if (i < about and i < limit) or (i >= about and i - about < limit):
            verdicts.append((match_id, story, alert_id, "relevant" if i < about else "not", "ana", now - 60 + i))
    verdicts.append((rows[-1][0], rows[-1][1], rows[-1][2], "relevant", "bo", now - 100))  # tie: ana's later "not"
    if give is not None:  # the real store API, once migration 14 is merged
        store = Store(db)
        try:
            for _m, _s, alert_id, verdict, who, at in verdicts:
                store.give_feedback(alert_id, verdict, who, at)
        finally:
            store.close()
        return
    conn = sqlite3.connect(db)
    with conn:
        conn.executescript(FEEDBACK_STAND_IN)
        for match_id, story, alert_id, verdict, who, at in verdicts:
            cur = conn.execute("INSERT INTO feedback (story, match_id, alert_id, verdict, given_by, via, created_at) "
                               "VALUES (?, ?, ?, ?, ?, 'cli', ?)", (story, match_id, alert_id, verdict, who, at))
            conn.execute("INSERT INTO feedback_rules VALUES (?, 'kursk', ?)", (cur.lastrowid, match_id))
    conn.close()


def models(db: Path) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT rule_id, examples, positives, trained, model FROM rule_models "
                            "ORDER BY rule_id").fetchall()
    finally:
        conn.close()


def test_rules_learn_trains_on_enough_feedback_and_stores_a_deterministic_model(tmp_path):
    cfg = write_config(tmp_path, feeds=[], channels=CHANNELS)
    db = tmp_path / "monitor.db"
    fill(db, 14, 8)

    res = run_cli("rules", "learn", "--config", str(cfg))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    kursk = next(x for x in lines if x.startswith("kursk:"))
    assert kursk.startswith("kursk: 22 examples (14 relevant, 8 not), trained: "), kursk
    assert "'liveblog'" in kursk or "in title" in kursk
    assert any(x.startswith("north-korean-troops: 0 examples (0 relevant, 0 not), kept plain") for x in lines)
    first = models(db)
    assert [(r[0], r[1], r[2], r[3]) for r in first] == [("kursk", 22, 14, 1), ("north-korean-troops", 0, 0, 0)]

    res = run_cli("rules", "learn", "kursk", "--config", str(cfg))  # again, one rule: the same bytes
    assert res.returncode == 0 and res.stdout == kursk + "\n", res.stderr
    assert models(db) == first


def test_rules_learn_keeps_plain_salience_with_too_little_feedback(tmp_path):
    cfg = write_config(tmp_path, feeds=[], channels=CHANNELS)
    db = tmp_path / "monitor.db"
    fill(db, 14, 8, judged=4)  # 4 + 1 relevant (the last story, judged by bo alone) and 4 not: too few

    res = run_cli("rules", "learn", "kursk", "--config", str(cfg))
    assert res.returncode == 0, res.stderr
    assert res.stdout == ("kursk: 9 examples (5 relevant, 4 not), kept plain: learning needs 10 with 3 of each\n")
    assert [(r[0], r[3]) for r in models(db)] == [("kursk", 0)]


def test_rules_learn_names_an_unknown_rule_and_exits_2(tmp_path):
    cfg = write_config(tmp_path, feeds=[], channels=CHANNELS)
    res = run_cli("rules", "learn", "nope", "--config", str(cfg))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.splitlines()[0].startswith("error: no rule 'nope' in ")


def test_rules_test_reports_precision_recall_and_tiers_against_the_feedback(tmp_path):
    cfg = write_config(tmp_path, feeds=[], channels=CHANNELS)
    db = tmp_path / "monitor.db"
    fill(db, 14, 8)

    res = run_cli("rules", "test", "kursk", "--config", str(cfg), "--since", "1d")
    assert res.returncode == 0, res.stderr
    out = res.stdout.splitlines()
    at = next(i for i, x in enumerate(out) if x.startswith("rule kursk: would have fired on 22 of 22"))
    # The stand-in matches carry no salience (stored as 1.0, alert): every match is an alert: the rule's
    # alerts are all 22 stories, 14 of them relevant, 8 not.
    assert out[at + 1] == "thresholds alert_at 0.5, digest_at 0.15: plain salience: alert 22, digest 0, store 0"
    assert out[at + 2] == "feedback: 22 judged stories in this window (14 relevant, 8 not)"
    assert out[at + 3] == "  plain alerts: precision 0.64, recall 1.00 (TP 14, FP 8, FN 0)"

    assert run_cli("rules", "learn", "kursk", "--config", str(cfg)).returncode == 0
    res = run_cli("rules", "test", "kursk", "--config", str(cfg), "--since", "1d")
    out = res.stdout.splitlines()[at + 1:]
    # The model starts at the plain salience (neutral here) and moves as far as 22 verdicts warrant:
    # passing mentions leave the alerts, no relevant story does.
    head = "thresholds alert_at 0.5, digest_at 0.15: plain salience: alert 22, digest 0, store 0; learned: alert "
    assert out[0].startswith(head) and 14 <= int(out[0][len(head):].split(",")[0]) < 22, out[0]
    assert out[1] == "feedback: 22 judged stories in this window (14 relevant, 8 not); model: learned from 22"
    assert out[3].startswith("  learned alerts: precision ") and "recall 1.00 (TP 14, FP " in out[3], out[3]
    assert float(out[3].split("precision ")[1][:4]) > 0.64


def test_the_daemons_learn_job_trains_off_the_loop_and_stores_the_model(tmp_path):
    """Daemon.learn, the scheduled retraining, on a real database: the store on its database
    thread, the training on a thread of its own; the model equals the CLI's."""
    import asyncio

    from monitor import config as config_mod
    from monitor import learn, rules
    from monitor.daemon import Daemon
    from monitor.store import connect
    from monitor.store.aio import AsyncStore

    cfg_path = write_config(tmp_path, feeds=[], channels=CHANNELS)
    db = tmp_path / "monitor.db"
    fill(db, 14, 8)
    cfg = config_mod.load(cfg_path)
    daemon = Daemon(cfg, rules.load(cfg.rules_dir))

    async def run() -> None:
        loop_ticks = 0
        daemon.ctx = type("Ctx", (), {"db": AsyncStore(connect(db))})()
        job = asyncio.create_task(daemon.learn())
        while not job.done():  # the loop keeps turning while the rules train
            loop_ticks += 1
            await asyncio.sleep(0)
        await job
        daemon.ctx.db.close()
        assert loop_ticks > 1

    asyncio.run(run())
    stored = {r[0]: r for r in models(db)}
    assert stored["kursk"][1:4] == (22, 14, 1) and learn.Model.loads(stored["kursk"][4]).trained
    assert run_cli("rules", "learn", "kursk", "--config", str(cfg_path)).returncode == 0
    assert {r[0]: r for r in models(db)}["kursk"][4] == stored["kursk"][4]  # same feedback, same bytes


def judged_matches(db: Path, recalibrated: bool) -> list:
    """Twelve matches of kursk stored by Store.record, judged by the team (8 relevant, 4 not), as a
    rule without a model stores them (``recalibrated`` False) or as pipeline._recalibrated does
    once the rule has one: the learned salience in the match, the plain one among its features."""
    from monitor import learn

    now = time.time()
    store = Store(db)
    try:
        store.sync_feeds([("https://news.example/rss", "News", None, ())], now)
        feed = store.feeds()[0]
        new = []
        for i in range(12):
            about = i < 8
            text = f"{ABOUT[i % 4]} report {i}" if about else f"{PASSING[i % 4]} item {i}"
            plain = 0.55 + 0.03 * (i % 5)
            features = (("title", int(about)), ("sentences", 6 + i % 3 if about else 1), ("of", 20 + i))
            salience = (0.9 if about else 0.2) if recalibrated else plain
            if recalibrated:
                features = (*features, (learn.PLAIN, plain))
            link = f"https://example.org/{i}"
            entry = Entry(uid=str(i), title=text[:40], link=link, summary="", content="", published=None)
            match = Match("kursk", "Kursk", ("Kursk",), "body", text, ("ops",), salience=salience,
                          tier="alert" if salience >= 0.5 else "store", features=features)
            new.append((entry, Article(title=text[:40], text=text, url=link, language="en", source="page"),
                        (match,)))
        store.record(feed, now=now - 3600, update=FeedUpdate(), new=new, baseline=False)
        for match_id, uid in store.db.execute("SELECT m.id, e.uid FROM matches m JOIN entries e "
                                              "ON e.id = m.entry_id ORDER BY m.id").fetchall():
            store.judge_match(match_id, "relevant" if int(uid) < 8 else "not", "ana", now - 60 + int(uid))
        return store.judged("kursk")
    finally:
        store.close()


def test_a_recalibrated_match_trains_on_its_plain_salience(tmp_path):
    """A rule with a model stores each new match with the learned salience and keeps the plain one
    among its features; retraining on those matches starts from the plain salience, as scoring a new
    match does, so the same verdicts train the same model whether or not a model scored them first
    (an earlier model's output is never the next one's starting point, and no feature appears in
    training that a new match does not carry)."""
    from monitor import learn, training

    plain_rows = judged_matches(tmp_path / "plain.db", recalibrated=False)
    learned_rows = judged_matches(tmp_path / "learned.db", recalibrated=True)
    examples = training.examples(learned_rows)
    assert len(examples) == 12 and all(learn.PLAIN not in e.features for e in examples)
    assert [e.salience for e in examples] == [e.salience for e in training.examples(plain_rows)]
    model = training.fit(learned_rows)
    assert model.trained and learn.PLAIN not in model.names
    assert model.dumps() == training.fit(plain_rows).dumps()


def test_rules_test_names_a_source_the_team_keeps_judging_not_relevant_and_skip_feeds_leaves_it_out(tmp_path):
    """Two stories of the feed "News" judged relevant and five not (the last by two people, one
    each way): `rules test` names the feed as a source mostly judged not relevant, with its counts
    of stories; with `skip_feeds` on the feed's URL the rule no longer fires on its articles."""
    rules = tmp_path / "rules"
    rules.mkdir()
    body = "    title: Kursk\n    any: [Kursk, Sudzha]\n"
    (rules / "kursk.yaml").write_text("rules:\n  - id: kursk\n" + body)
    cfg = write_config(tmp_path, feeds=[], channels=CHANNELS, rules=rules)
    fill(tmp_path / "monitor.db", 2, 5)
    res = run_cli("rules", "test", "kursk", "--config", str(cfg), "--since", "1d")
    assert res.returncode == 0, res.stderr
    out = res.stdout.splitlines()
    assert out[-2:] == ["sources mostly judged not relevant (1; the rule's skip_feeds: [GLOB] leaves a feed out):",
                        "  News: 5 not, 3 relevant  https://news.example/rss"], out
    assert any(x.startswith("rule kursk: would have fired on 7 of 7 ") for x in out), out

    (rules / "kursk.yaml").write_text("rules:\n  - id: kursk\n" + body + '    skip_feeds: ["*//news.example/*"]\n')
    out = run_cli("rules", "test", "kursk", "--config", str(cfg), "--since", "1d").stdout.splitlines()
    assert any(x.startswith("rule kursk: would have fired on 0 of 7 ") for x in out), out
