"""Noise control against a real SQLite file and a real webhook receiver, with an injected clock:
matches go in through ``store.record`` (as a poll records them) and out through the Sender (as
the daemon drains the outbox). Story grouping, rate limits, quiet hours and digests."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import pytest
from conftest import write_config
from servers import Webhook
from test_alerts_cli import cli_run

from monitor import links, noise
from monitor.config import NotifySection
from monitor.delivery import Sender
from monitor.models import Article, Channel, Entry, FeedUpdate, Match
from monitor.notify import Notifier
from monitor.store import Store

WORDS = " ".join(f"officials in district {i} said troops moved past village {i * 3} before dawn"
                 for i in range(20)).split()


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


class Rig:
    """A store, a sender with an injected clock, and a webhook channel 'hook' with noise settings."""

    def __init__(self, database: str, now: float = 1000.0, **noise_settings: object):
        self.hook = Webhook()
        self.store = Store(database)
        self.clock = Clock(now)
        channel = Channel("hook", (self.hook.apprise_url,), "hook", **noise_settings)  # type: ignore[arg-type]
        self.sender = Sender(self.store, Notifier({"hook": channel}), NotifySection(retry=10, max_retry=60),
                             clock=self.clock, rng=random.Random(1))
        self.feeds: dict[int, object] = {}
        self.n = 0

    def feed(self, i: int):
        if i not in self.feeds:
            url = f"http://127.0.0.1:9/feed{i}.xml"
            self.store.sync_feeds([(url, f"Feed {i}", None)], now=self.clock.now)
            self.feeds[i] = next(f for f in self.store.feeds() if f.url == url)
        return self.feeds[i]

    def match(self, title: str, link: str, *, feed: int = 0, text: str = "", rule: str | tuple[str, ...] = "r",
              severity: str = "normal", routes: dict[str, tuple[str, ...]] | None = None) -> int:
        """One new entry of ``feed`` matching ``rule`` (or each of several), recorded as a poll
        records it; each rule routes to 'hook', or to its channels in ``routes``."""
        self.n += 1
        entry = Entry(uid=f"guid:{self.n}", title=title, link=link, summary="", content="", published=None,
                      guid=str(self.n), content_hash=str(self.n))
        article = Article(title=title, text=text, url=link) if text else None
        ms = [Match(r, f"Rule {r}", ("Kursk",), "title", "… Kursk …", channels=(routes or {}).get(r, ("hook",)),
                    severity=severity)
              for r in ((rule,) if isinstance(rule, str) else rule)]
        update = FeedUpdate(last_ok_at=self.clock.now, last_status="ok", error_count=0, next_check_at=0)
        return self.store.record(self.feed(feed), now=self.clock.now, update=update, new=[(entry, article, ms)],
                                 baseline=False)

    def deliver(self) -> tuple[int, int]:
        return asyncio.run(self.sender.deliver())

    def states(self) -> dict[str, int]:
        return self.store.outbox_counts()

    def close(self) -> None:
        self.sender.close()
        self.store.close()
        self.hook.close()


@pytest.fixture
def rig(database):
    made: list[Rig] = []

    def make(**kw: object) -> Rig:
        made.append(Rig(database, **kw))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for r in made:
        r.close()


def test_one_story_in_20_feeds_within_a_minute_is_one_alert_plus_followups(rig, tmp_path, database):
    r = rig(followup_every=600)
    for i in range(20):
        r.clock.now = 1000 + 3 * i
        r.match(f"Kursk: fighting (via feed {i})", "https://example.org/story", feed=i, text=" ".join(WORDS))
        r.deliver()
    r.match("Kursk: fighting again", "https://example.org/story", feed=0)  # the same feed again: nothing
    assert [m["title"] for m in r.hook.received] == ["Kursk: fighting (via feed 0)"]
    assert r.states() == {"sent": 1, "held": 19}

    cfg = write_config(tmp_path, feeds=[], channels={"hook": [r.hook.apprise_url]}, database=database)
    shown = cli_run("alerts", "show", "1", "--config", str(cfg))
    assert "followups:     19 more sources" in shown.stdout, shown.stdout
    assert "same link  Feed 19: Kursk: fighting (via feed 19)  https://example.org/story  · hook: held" in shown.stdout

    r.clock.now = 1003 + 599  # follow-ups go out together, followup_every after the first of them
    r.deliver()
    assert len(r.hook.received) == 1
    r.clock.now = 1003 + 600
    assert r.deliver() == (1, 0)
    digest = r.hook.received[1]
    assert digest["title"] == "Digest: 0 alerts, 19 more sources"
    [item] = digest["items"]  # a JSON webhook gets the digest as one object (render.digest_document)
    assert (item["title"], item["reason"]) == ("Kursk: fighting (via feed 0)", "followup")
    assert item["sources"][:2] == [{"feed": "Feed 1", "link": "https://example.org/story"},
                                   {"feed": "Feed 2", "link": "https://example.org/story"}]
    assert r.states() == {"sent": 20}
    assert r.deliver() == (0, 0) and len(r.hook.received) == 2


def test_near_identical_text_is_a_followup_within_the_window_only(rig):
    r = rig()
    text = " ".join(WORDS)
    r.match("Troops cross the border", "https://a.example/1", feed=1, text=text)
    edited = " ".join(["Updated:", *WORDS[:30], "villagers", *WORDS[31:]])  # a copy, one word changed
    assert r.match("Border crossed, say officials", "https://b.example/2", feed=2, text=edited) == 0
    other = " ".join(w.replace("troops", "grain ships") for w in WORDS[::-1])
    assert r.match("Grain", "https://c.example/3", feed=3, text=other) == 1  # different text: its own alert
    r.clock.now += noise.GROUP_WINDOW + 1
    assert r.match("Troops cross the border, again", "https://d.example/4", feed=4, text=text) == 1
    assert r.store.followups(1) == [{"feed": "Feed 2", "title": "Border crossed, say officials",
                                     "link": "https://b.example/2", "created_at": 1000.0, "how": "same text",
                                     "delivery": ["hook: held"]}]  # held for the follow-ups' digest


def _sources(r: Rig, alert: int) -> list[str]:
    return [f["feed"] for f in r.store.followups(alert)]


def test_a_story_judged_not_relevant_is_not_told_again_by_its_other_sources(rig, tmp_path, database):
    r = rig(followup_every=600)
    r.match("Kursk: a wire story", "https://example.org/wire", feed=0)
    assert r.deliver() == (1, 0)
    r.clock.now += 60
    r.match("Kursk: a wire story", "https://example.org/wire", feed=1)  # held before the verdict
    r.store.give_feedback(1, "not", "ana", r.clock.now, "a twin-town report")
    for i in (2, 3):  # after it: stored, not held
        r.clock.now += 60
        assert r.match("Kursk: a wire story", "https://example.org/wire", feed=i) == 0
    assert r.states() == {"sent": 1, "held": 1}
    assert [f["delivery"] for f in r.store.followups(1)] == [["hook: held"], [], []]
    r.clock.now += 600
    assert r.deliver() == (0, 0)  # the follow-up held before the verdict leaves no digest either
    assert r.states() == {"sent": 1} and len(r.hook.received) == 1
    assert _sources(r, 1) == ["Feed 1", "Feed 2", "Feed 3"]  # every source is kept, and shown
    assert [f["delivery"] for f in r.store.followups(1)] == [[], [], []]  # none of them sent
    cfg = write_config(tmp_path, feeds=[], channels={"hook": [r.hook.apprise_url]}, database=database)
    shown = cli_run("alerts", "show", "1", "--config", str(cfg)).stdout
    assert "Feed 3: Kursk: a wire story  https://example.org/wire  · not sent" in shown, shown
    assert "followups:     3 more sources" in shown and shown.rstrip().endswith(
        "not told:      its other sources are no longer sent for r (judged not relevant)"), shown
    r.clock.now += 60
    assert r.match("Grain ships", "https://example.org/grain", feed=2) == 1  # other stories alert as before


def test_a_verdict_on_one_rule_leaves_out_the_followups_held_on_that_rules_channel_only(rig, database):
    """kursk routes to 'desk', troops to 'hook'; a follow-up of a story of both was held on each
    channel before the team judged the story not relevant for kursk: desk's digest leaves it out,
    hook's lists it. A row made before migration 24 (no ``rules``) is judged by every rule of the
    follow-up, as before: kept."""
    r = rig(followup_every=600)
    routes = {"kursk": ("desk",), "troops": ("hook",)}
    for n, story in enumerate(("https://example.org/new", "https://example.org/old")):
        lead = r.match("Kursk and troops", story, feed=0, rule=("kursk", "troops"), routes=routes)
        assert lead == 2  # one row on each channel
        r.clock.now += 60
        assert r.match("Kursk and troops", story, feed=1, rule=("kursk", "troops"), routes=routes) == 0
        held = r.store.db.execute("SELECT id, channel, rules FROM outbox WHERE held = 'followup' ORDER BY id"
                                  ).fetchall()
        assert [tuple(h)[1:] for h in held[-2:]] == [("desk", '["kursk"]'), ("hook", '["troops"]')]
        if n:  # as a row written before the column was
            r.store.db.execute("UPDATE outbox SET rules = NULL WHERE id IN (?, ?)", (held[-2][0], held[-1][0]))
        first = r.store.db.execute("SELECT MIN(o.id) FROM outbox o JOIN matches m ON m.id = o.match_id "
                                   "WHERE m.story = ?", (story,)).fetchone()[0]
        r.store.give_feedback(first, "not", "ana", r.clock.now, rule="kursk")
    r.clock.now += 600
    assert r.store.bundle("desk", r.clock.now) is not None  # the old row only: its troops rule was not judged
    assert r.store.bundle("hook", r.clock.now) is not None
    followups = r.store.db.execute("SELECT e.link, o.channel FROM outbox o JOIN matches m ON m.id = o.match_id "
                                   "JOIN entries e ON e.id = m.entry_id WHERE o.held = 'followup' ORDER BY o.id"
                                   ).fetchall()
    assert [tuple(f) for f in followups] == [
        ("https://example.org/new", "hook"), ("https://example.org/old", "desk"), ("https://example.org/old", "hook")]


def test_a_story_stays_told_while_anyone_judged_it_relevant_or_a_rule_of_it_is_not_judged(rig):
    r = rig(followup_every=600)
    r.match("Kursk: two views", "https://example.org/views", feed=0)
    r.match("Kursk and troops", "https://example.org/both", feed=0, rule=("kursk", "troops"))
    assert r.deliver() == (2, 0)
    r.store.give_feedback(1, "not", "ana", r.clock.now)
    r.store.give_feedback(1, "relevant", "ben", r.clock.now)  # one "relevant" keeps the story told
    r.store.give_feedback(2, "not", "ana", r.clock.now, rule="kursk")  # not relevant to one rule of two
    r.clock.now += 60
    r.match("Kursk: two views", "https://example.org/views", feed=1)
    r.match("Kursk and troops", "https://example.org/both", feed=1, rule=("kursk", "troops"))
    assert r.states() == {"sent": 2, "held": 2}
    r.store.give_feedback(1, "not", "ben", r.clock.now)  # ben changes his mind: now everyone says "not"
    r.clock.now += 600
    assert r.deliver() == (1, 0)
    [item] = r.hook.received[-1]["items"]
    assert (item["title"], item["reason"]) == ("Kursk and troops", "followup")
    r.clock.now += 60
    r.match("Kursk and troops", "https://example.org/both", feed=2, rule=("kursk", "troops"))
    assert r.store.outbox_counts() == {"sent": 3, "held": 1}  # the troops rule still tells it
    stored = r.store.db.execute("SELECT m.rule_id FROM matches m JOIN entries e ON e.id = m.entry_id "
                                "WHERE e.uid = ? ORDER BY m.id", [f"guid:{r.n}"]).fetchall()
    assert [rule for (rule,) in stored] == ["kursk", "troops"]  # both matches are stored


def test_200_matches_in_an_hour_under_5_per_hour_give_5_alerts_and_one_digest(rig):
    r = rig(rate_limit="5/h")
    for i in range(200):
        r.clock.now = 1000 + 18 * i  # 200 matches within the hour
        r.match(f"s{i}", f"https://example.org/{i}")
        r.deliver()
    assert [m["title"] for m in r.hook.received] == [f"s{i}" for i in range(5)]
    assert r.states() == {"sent": 5, "held": 195}
    r.clock.now = 1000 + 3600  # the first alert leaves the window: there is room again
    assert r.deliver() == (1, 0)
    [digest] = r.hook.received[5:]
    assert digest["title"] == "Digest: 195 alerts"
    assert (digest["held_back"], digest["rate_limit"]) == (195, "5/h")
    assert [i["title"] for i in digest["items"]] == [f"s{i}" for i in range(5, 200)]
    assert r.states() == {"sent": 200}
    r.clock.now += 1
    r.match("s200", "https://example.org/200")
    assert r.deliver() == (1, 0) and r.hook.received[-1]["title"] == "s200"


def test_quiet_hours_across_the_end_of_daylight_saving_time_defer_then_release_one_digest(rig):
    def utc(day: int, hour: int, minute: int = 0) -> float:
        return datetime(2026, 10, day, hour, minute, tzinfo=UTC).timestamp()

    # Berlin: 22:00 CEST on Oct 24 is 20:00 UTC; clocks go back on Oct 25, so 07:00 CET is 06:00 UTC.
    r = rig(now=utc(24, 19, 59), quiet_hours="22:00-07:00", timezone="Europe/Berlin")
    r.match("before", "https://example.org/0")
    r.deliver()
    for i, when in enumerate([utc(24, 20, 0), utc(24, 23, 30), utc(25, 1, 30)], 1):
        r.clock.now = when
        r.match(f"quiet {i}", f"https://example.org/{i}")
        r.deliver()
    r.clock.now = utc(25, 2)
    r.match("urgent one", "https://example.org/u", severity="urgent")
    r.deliver()
    assert [m["title"] for m in r.hook.received] == ["before", "urgent one"]
    r.clock.now = utc(25, 5, 30)  # 07:00 CEST would have been 05:00 UTC: still quiet in CET
    assert r.deliver() == (0, 0) and r.states() == {"sent": 2, "held": 3}
    r.clock.now = utc(25, 6, 0)
    assert r.deliver() == (1, 0)
    digest = r.hook.received[-1]
    assert digest["title"] == "Digest: 3 alerts"
    assert [i["title"] for i in digest["items"]] == ["quiet 1", "quiet 2", "quiet 3"]
    assert r.states() == {"sent": 5}


def test_digest_channel_sends_one_message_grouped_by_rule_and_story_at_least_once(rig, tmp_path, database):
    r = rig(digest="0 8 * * *")
    signer = links.Links("https://monitor.example.org", lambda: b"k" * 32, 3600, clock=r.clock)
    r.sender.notifier.links = signer.urls  # [web] public_url set: every story of the digest carries its links
    r.match("Kursk 1", "https://example.org/k1", rule="kursk")
    r.match("Troops 1", "https://example.org/t1", rule="troops")
    r.match("Kursk 1 elsewhere", "https://example.org/k1", feed=2, rule="kursk")  # a follow-up of Kursk 1
    r.match("Kursk 2", "https://example.org/k2", rule="kursk")
    assert r.deliver() == (0, 0) and r.states() == {"held": 4}
    r.hook.script = [(500, {})]  # the digest itself fails once: retried like any alert
    assert asyncio.run(r.sender.digest("hook")) == 1  # what the daemon's cron job does
    assert r.deliver() == (0, 1) and r.states() == {"failed": 1, "digest": 3}
    r.clock.now += 60
    assert r.deliver() == (1, 0)
    [digest] = r.hook.received
    assert [(i["rules"][0]["title"], i["title"], i["feed"], i["link"], i["sources"]) for i in digest["items"]] == [
        ("Rule kursk", "Kursk 1", "Feed 0", "https://example.org/k1",
         [{"feed": "Feed 2", "link": "https://example.org/k1"}]),
        ("Rule troops", "Troops 1", "Feed 0", "https://example.org/t1", []),
        ("Rule kursk", "Kursk 2", "Feed 0", "https://example.org/k2", [])]  # in outbox order: the text groups
    for item in digest["items"]:  # each link judges its own story: an alert's verdict, from the digest
        for verdict in ("relevant", "not"):
            claim = signer.check(item["feedback"][verdict].rsplit("/", 1)[1])
            assert (claim.alert_id, claim.verdict) == (item["id"], verdict)
    assert r.states() == {"sent": 4}
    cfg = write_config(tmp_path, feeds=[], channels={"hook": [r.hook.apprise_url]}, database=database)
    shown = cli_run("alerts", "show", "1", "--config", str(cfg))
    assert "digest of:     4 alerts" in shown.stdout, shown.stdout


def test_the_daemon_runs_digests_on_the_channels_wall_clock(tmp_path):
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from monitor import config as config_mod
    from monitor.daemon import Daemon

    cfg = write_config(tmp_path, feeds=[], channels={"hook": ["json://127.0.0.1:9/x"]},
                       extra='[channels.mail]\nurls = ["log://"]\ndigest = "0 8 * * *"\ntimezone = "Europe/Berlin"')
    d = Daemon(config_mod.load(cfg), ruleset=None)  # type: ignore[arg-type]
    d.scheduler = AsyncIOScheduler(timezone="UTC")
    d.digest_jobs()
    [job] = d.scheduler.get_jobs()
    after = datetime(2026, 10, 24, 12, 0, tzinfo=UTC)
    assert job.id == "digest:mail"
    assert job.trigger.get_next_fire_time(None, after).astimezone(UTC) == datetime(2026, 10, 25, 7, tzinfo=UTC)


@pytest.mark.parametrize("spec,ok", [("5/h", (5, 3600)), ("10/30m", (10, 1800)), ("", None)])
def test_rate_spec(spec, ok):
    assert noise.rate(spec) == ok


@pytest.mark.parametrize("bad", ["5", "0/h", "5/w", "x/h"])
def test_rate_spec_malformed(bad):
    with pytest.raises(ValueError):
        noise.rate(bad)


def test_simhash_is_stable_and_short_texts_have_none():
    text = " ".join(WORDS)
    assert noise.simhash(text) == noise.simhash(text.upper())
    assert noise.simhash("too short to tell") is None
    fp = noise.simhash(text)
    assert fp is not None and noise.near(fp, [(7, fp)]) == 7
