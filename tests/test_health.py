"""monitor.health.decide: the feed's update after a poll, a pure function of the feed, the poll's
result, the time and the settings. Table-driven; no database, no network, no clock."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from monitor import health
from monitor.models import KEEP, Feed, FeedUpdate

NOW = 1_790_000_000.0
HOUR = 3600.0
SETTINGS = health.Settings(adaptive=True, min_interval=300, max_interval=3600, max_hint=21600, max_backoff=21600,
                           failing_alert_after=6 * HOUR, ops_channels=("ops", "pager"))
URL = "https://news.example/feed.xml"
FEED = Feed(id=1, url=URL, title="News", interval=900, baselined=True, source_url=URL)
FAILING = replace(FEED, error_count=3, failing_since=NOW - HOUR)  # an hour into a streak, no alert yet
ALERTED = replace(FEED, error_count=9, failing_since=NOW - 7 * HOUR, alerted_failing=True)
GONE = replace(FEED, error_count=61, failing_since=NOW - 86400, gone=True, alerted_failing=True)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def fetched(**kw: object) -> health.Fetched:
    return health.Fetched(**{"headers": {}, "etag": '"v2"', "last_modified": "Tue", "body_hash": "h2", **kw})


def decide(feed: Feed, result: health.Result, settings: health.Settings = SETTINGS) -> FeedUpdate:
    return health.decide(feed, result, NOW, settings, rng=random.Random(1))


def wait(u: FeedUpdate) -> float:
    assert u.next_check_at is not KEEP
    return u.next_check_at - NOW


RESET = {"last_polled_at": NOW, "last_ok_at": NOW, "last_error_kind": None, "last_error": None, "error_count": 0,
         "failing_since": None, "gone_at": None, "alerted_failing": False}
VALIDATORS_KEPT = dict.fromkeys(("etag", "last_modified", "body_hash", "cadence_s", "last_new_at", "baselined_at",
                                 "ttl_s"), KEEP)
ERROR_KEEPS = dict.fromkeys(("last_ok_at", "etag", "last_modified", "body_hash", "cadence_s", "last_new_at",
                             "baselined_at"), KEEP)

# name: (feed, result, expected fields, notice kinds (one per ops channel), wait range in seconds)
CASES = {
    "304 after a good poll: reset, validators kept, next at the interval": (
        FEED, health.Unchanged({}), {**RESET, **VALIDATORS_KEPT, "last_status": "not-modified"}, [], (810, 990)),
    "304 with max-age: never sooner than the server asks": (
        FEED, health.Unchanged({"cache-control": "max-age=7200"}), {"last_status": "not-modified"}, [], (7200, 7200)),
    "304 of a feed whose body gave a ttl: the ttl holds, the body being the same": (
        replace(FEED, ttl=3000.0), health.Unchanged({}), {**VALIDATORS_KEPT, "last_status": "not-modified"}, [],
        (3000, 3000)),
    "200 with a ttl: kept for the 304s after it": (
        FEED, fetched(ttl=3000.0), {"ttl_s": 3000.0}, [], (3000, 3000)),
    "200 without a ttl: the last one cleared": (
        replace(FEED, ttl=3000.0), fetched(), {"ttl_s": None}, [], (810, 990)),
    "200: validators, and news seen now": (
        FEED, fetched(new=2), {**RESET, "last_status": "ok", "etag": '"v2"', "last_modified": "Tue",
                               "body_hash": "h2", "last_new_at": NOW, "baselined_at": KEEP}, [], (810, 990)),
    "200 of reposts only: news not seen now": (
        replace(FEED, last_new_at=NOW - HOUR), fetched(new=1, reposts=1), {"last_new_at": NOW - HOUR}, [], None),
    "first 200: baselined, news last seen at the newest entry, cadence from its dates": (
        replace(FEED, baselined=False),
        fetched(baseline=True, published=(iso(NOW - 3 * HOUR), iso(NOW - 2 * HOUR), iso(NOW - HOUR), None)),
        {"baselined_at": NOW, "last_new_at": NOW - HOUR, "cadence_s": HOUR}, [], (1620, 1980)),
    "ok after failures that were not alerted: quietly reset": (
        FAILING, fetched(), RESET, [], (810, 990)),
    "ok after an alerted failure: recovered": (
        ALERTED, health.Unchanged({}), RESET, ["recovered", "recovered"], (810, 990)),
    "ok after 410: recovered, no longer gone": (
        GONE, fetched(), RESET, ["recovered", "recovered"], (810, 990)),
    "first error: counted, backs off one interval": (
        FEED, health.Failed("timeout", "no complete answer within 30s"),
        {**ERROR_KEEPS, "last_polled_at": NOW, "last_status": "error", "last_error_kind": "timeout",
         "last_error": "no complete answer within 30s", "error_count": 1, "failing_since": NOW, "gone_at": KEEP,
         "alerted_failing": KEEP}, [], (810, 990)),
    "fourth error: backoff doubled three times, streak start kept": (
        FAILING, health.Failed("http-5xx", "HTTP 503"), {"error_count": 4, "failing_since": NOW - HOUR}, [],
        (7200 * 0.9, 7200 * 1.1)),
    "many errors: backoff capped at max_backoff": (
        replace(FAILING, error_count=40), health.Failed("dns", "cannot resolve"), {"error_count": 41}, [],
        (21600 * 0.9, 21600 * 1.1)),
    "Retry-After longer than the backoff is honoured": (
        FEED, health.Failed("http-429", "HTTP 429", retry_after=5000), {"last_error_kind": "http-429"}, [],
        (5000, 5000)),
    "Retry-After shorter than the backoff does not shorten it": (
        FEED, health.Failed("http-5xx", "HTTP 503", retry_after=5), {}, [], (810, 990)),
    "Retry-After of a year is capped at max_backoff": (
        FEED, health.Failed("http-429", "HTTP 429", retry_after=365 * 86400), {}, [], (21600, 21600)),
    "410: gone, one notice, straight to the cap": (
        FEED, health.Failed("http-410", "HTTP 410 Gone"),
        {"gone_at": NOW, "alerted_failing": True, "error_count": 1, "last_error_kind": "http-410"},
        ["gone", "gone"], (21600 * 0.9, 21600 * 1.1)),
    "410 again: no second notice, gone_at kept": (
        GONE, health.Failed("http-410", "HTTP 410 Gone"), {"gone_at": KEEP, "alerted_failing": KEEP}, [],
        (21600 * 0.9, 21600 * 1.1)),
    "failing for less than failing_alert_after: no notice yet": (
        replace(FAILING, failing_since=NOW - 6 * HOUR + 1), health.Failed("http-5xx", "HTTP 503"),
        {"alerted_failing": KEEP}, [], None),
    "failing for failing_alert_after: one failing notice": (
        replace(FAILING, failing_since=NOW - 6 * HOUR), health.Failed("http-5xx", "HTTP 503"),
        {"alerted_failing": True}, ["failing", "failing"], None),
    "failing after the alert: no second notice": (
        ALERTED, health.Failed("http-5xx", "HTTP 503"), {"alerted_failing": KEEP, "failing_since": NOW - 7 * HOUR},
        [], None),
    "an internal error is a failure like any other": (
        FAILING, health.Failed("internal", "internal: RuntimeError: boom"),
        {"last_error_kind": "internal", "error_count": 4}, [], None),
    "a long error text is cut to 500 characters": (
        FEED, health.Failed("protocol", "x" * 2000), {"last_error": "x" * 500}, [], None),
    "a permanent redirect moves the feed": (
        FEED, health.Unchanged({}, moved="https://news.example/new.xml"),
        {"moved": "https://news.example/new.xml"}, [], None),
}


@pytest.mark.parametrize("feed,result,expected,notices,waits", CASES.values(), ids=CASES.keys())
def test_decide(feed, result, expected, notices, waits):
    u = decide(feed, result)

    assert {k: getattr(u, k) for k in expected} == expected
    assert [n.kind for n in u.notices] == notices
    assert [n.channel for n in u.notices] == ["ops", "pager"][:len(notices)]
    if waits is not None:
        assert waits[0] <= wait(u) <= waits[1]


def test_notices_say_what_happened_and_what_to_do():
    failing = decide(replace(FAILING, failing_since=NOW - 7 * HOUR), health.Failed("http-5xx", "HTTP 503"))
    gone = decide(FEED, health.Failed("http-410", "HTTP 410 Gone"))
    back = decide(ALERTED, fetched())

    assert failing.notices[0].title == "Feed failing: News"
    assert "Failing for 7 hours (4 attempts). Last error: http-5xx: HTTP 503" in failing.notices[0].body
    assert failing.warning == f"feed failing for 7 hours feed={URL} error='http-5xx: HTTP 503'"
    assert gone.notices[0].title == "Feed gone: News" and f"monitor feeds remove {URL}" in gone.notices[0].body
    assert gone.warning.startswith(f"feed gone (HTTP 410) feed={URL}: polled every 6 hours")
    assert back.notices[0].body == f"{URL}\nPolled successfully again after 7 hours of errors."
    assert back.warning == "" and decide(FEED, health.Failed("timeout", "slow")).warning == ""


def test_without_ops_channels_nothing_is_queued_but_the_log_still_says_it():
    u = decide(FEED, health.Failed("http-410", "HTTP 410 Gone"), replace(SETTINGS, ops_channels=()))

    assert u.notices == () and u.gone_at == NOW and u.warning.startswith("feed gone")


def test_the_interval_follows_the_learned_cadence_unless_pinned():
    learned = replace(FEED, cadence=2 * HOUR)  # half of it: one hour, within [300, 3600]

    assert 3240 <= wait(decide(learned, health.Unchanged({}))) <= 3960
    assert 810 <= wait(decide(replace(learned, pinned=True), health.Unchanged({}))) <= 990
    assert 810 <= wait(decide(learned, health.Unchanged({}), replace(SETTINGS, adaptive=False))) <= 990


def test_same_inputs_same_update():
    assert decide(FAILING, health.Failed("dns", "x")) == decide(FAILING, health.Failed("dns", "x"))


@pytest.mark.parametrize("result", [health.Unchanged({}), health.Unchanged({}, moved="https://news.example/new.xml"),
                                    fetched()], ids=["304", "304 moved", "new body"])
@pytest.mark.parametrize("feed", [FEED, ALERTED], ids=["healthy", "recovering"])
def test_a_success_is_the_update_its_constructor_makes(feed, result):
    """``_ok`` builds its FeedUpdate without the dataclass's __init__ (a hot path): the object
    must be the one the constructor makes, every field, its hash and its replacements too."""
    u = decide(feed, result)
    made = FeedUpdate(**{f: getattr(u, f) for f in FeedUpdate.__dataclass_fields__})

    assert u == made and hash(u) == hash(made) and vars(u) == vars(made)
    assert (u.last_error_kind, u.last_error, u.error_count, u.failing_since, u.gone_at, u.alerted_failing) == \
        (None, None, 0, None, None, False)
    assert u.last_polled_at == u.last_ok_at == NOW and u.next_check_at > NOW
    assert replace(u, etag="x").etag == "x" and replace(u, etag="x").last_polled_at == NOW
    with pytest.raises(AttributeError):
        u.last_status = "error"  # type: ignore[misc]
