"""The sender against real receivers: a JSON webhook on 127.0.0.1 answering 500, 429 with
Retry-After, 404 and 200, and an aiosmtpd server that refuses, then accepts. Time is an
injected clock, so backoff and max_age take no real waiting."""

from __future__ import annotations

import asyncio
import json
import random
import time

import pytest
from conftest import db_rows, run_cli, write_config
from outbox_driver import seed
from servers import SMTP, Webhook

from monitor import schedule
from monitor.config import NotifySection
from monitor.delivery import Sender, verdict
from monitor.models import Alert, Channel
from monitor.notify import Notifier
from monitor.store import Store


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def sender_for(tmp_path, channels: dict[str, str], titles=("s1", "s2", "s3"), send_to=None, **cfg):
    store = Store(tmp_path / "monitor.db")
    seed(store, titles, send_to or tuple(channels))
    clock = Clock()
    notifier = Notifier({n: Channel(n, (u,), n) for n, u in channels.items()})
    settings = NotifySection(**{"retry": 10, "max_retry": 60, "timeout": 10, **cfg})
    return Sender(store, notifier, settings, clock=clock, rng=random.Random(1)), store, clock


def rows(store: Store, sql: str) -> list[tuple]:
    return db_rows(store.path, sql)


def test_500_then_429_retry_after_then_200_delivers_each_once_in_order(tmp_path):
    hook = Webhook()
    hook.script = [(500, {}), (429, {"Retry-After": "120"})]
    sender, store, clock = sender_for(tmp_path, {"hook": hook.apprise_url})

    assert asyncio.run(sender.deliver()) == (0, 1)  # the head failed; the others wait behind it
    [(state, next_at, status)] = rows(store, "SELECT state, next_attempt_at, last_status FROM outbox WHERE id = 1")
    assert (state, next_at, status) == ("failed", 1010.0, 500)  # first retry: notify.retry
    clock.now = 1010.0
    assert asyncio.run(sender.deliver()) == (0, 1)
    # Retry-After 120 s wins over the backoff (10..20 s) and even over notify.max_retry (60 s).
    assert rows(store, "SELECT next_attempt_at, last_status, last_error FROM outbox WHERE id = 1") == [
        (1130.0, 429, 'HTTP 429 Too Many Requests: {"error": "refused by the test"}')]
    clock.now = 1129.0
    assert asyncio.run(sender.deliver()) == (0, 0) and hook.answers == [500, 429]  # not due: no request
    clock.now = 1130.0
    assert asyncio.run(sender.deliver()) == (3, 0)

    assert [m["title"] for m in hook.received] == ["s1", "s2", "s3"]
    assert rows(store, "SELECT state, attempts, last_status FROM outbox ORDER BY id") == [
        ("sent", 3, 200), ("sent", 1, 200), ("sent", 1, 200)]
    assert asyncio.run(sender.deliver()) == (0, 0) and len(hook.received) == 3
    hook.close()


def test_404_from_the_endpoint_is_a_failure_never_a_success(tmp_path):
    hook = Webhook()
    hook.status = 404
    sender, store, clock = sender_for(tmp_path, {"hook": hook.apprise_url}, titles=("s1",))
    assert asyncio.run(sender.deliver()) == (0, 1)
    assert rows(store, "SELECT state, attempts, last_status, sent_at FROM outbox") == [("failed", 1, 404, None)]
    assert "HTTP 404 Not Found" in rows(store, "SELECT last_error FROM outbox")[0][0]
    hook.close()


def test_smtp_refusing_then_recovering_delivers_each_mail_once_in_order(tmp_path):
    smtp = SMTP()
    smtp.start()
    smtp.inbox.refuse = 1  # "451 try again later" to the first message
    sender, store, clock = sender_for(tmp_path, {"mail": smtp.apprise_url}, titles=("m1", "m2"))
    try:
        assert asyncio.run(sender.deliver()) == (0, 1)
        [(state, error)] = rows(store, "SELECT state, last_error FROM outbox WHERE id = 1")
        assert state == "failed" and "451" in error and "try again later" in error  # the server's own words
        clock.now += 60
        # apprise paces one email object at 5.5 s a message (../shared/LIBRARY-NOTES.md); a fresh one, as after
        # a restart, keeps this test to one such pause.
        sender.notifier = Notifier({"mail": Channel("mail", (smtp.apprise_url,), "mail")})
        assert asyncio.run(sender.deliver()) == (2, 0)
        assert [m["Subject"] for m in smtp.messages] == ["[Rule r] m1", "[Rule r] m2"]
    finally:
        smtp.stop()


def test_an_outage_outlasts_max_attempts_and_everything_arrives_in_order_when_it_ends(tmp_path):
    hook = Webhook()
    hook.status = 503
    sender, store, clock = sender_for(tmp_path, {"hook": hook.apprise_url}, titles=("o1", "o2"), max_attempts=3)
    for _ in range(8):  # hours of 503s: far more failures than max_attempts
        asyncio.run(sender.deliver())
        clock.now += 4000
    assert rows(store, "SELECT id, state, attempts FROM outbox ORDER BY id") == [(1, "failed", 8), (2, "pending", 0)]
    hook.status = 200
    clock.now += 4000
    assert asyncio.run(sender.deliver()) == (2, 0)
    assert [m["title"] for m in hook.received] == ["o1", "o2"]
    hook.close()


def test_dead_after_max_attempts_with_an_ops_notice_then_revived_from_the_cli(tmp_path):
    hook, ops = Webhook(), Webhook()
    hook.status = 400  # the service refuses this message: sending it unchanged will not help
    cfg = write_config(tmp_path, feeds=[], channels={"hook": [hook.apprise_url], "ops": [ops.apprise_url]},
                       extra="max_attempts = 3\nops_channels = [\"ops\"]")
    sender, store, clock = sender_for(tmp_path, {"hook": hook.apprise_url, "ops": ops.apprise_url},
                                      titles=("d1", "d2"), send_to=("hook",), max_attempts=3, ops_channels=["ops"])
    for _ in range(3):
        asyncio.run(sender.deliver())
        clock.now += 100
    assert rows(store, "SELECT id, state, attempts FROM outbox ORDER BY id") == [(1, "dead", 3), (2, "pending", 0)]
    assert rows(store, "SELECT kind, channel, state FROM notices") == [("alert-dead", "ops", "pending")]
    asyncio.run(sender.deliver())  # the notice goes out; the next alert is now the channel's head
    [notice] = ops.received
    assert notice["title"] == "Alert undeliverable: [Rule r] d1"
    assert "after 3 attempts" in notice["message"] and "HTTP 400" in notice["message"]
    assert rows(store, "SELECT id, state, attempts FROM outbox ORDER BY id") == [(1, "dead", 3), (2, "failed", 1)]

    shown = run_cli("alerts", "--config", str(cfg), "--state", "dead")
    assert shown.returncode == 0, shown.stderr
    [header, line, error] = shown.stdout.splitlines()
    assert line.split()[:5] == ["1", "dead", "hook", "3", "1970-01-01"] and line.endswith("r: d1")
    assert "dead after 3 attempts (notify.max_attempts); last error: HTTP 400" in error
    revived = run_cli("alerts", "retry", "--dead", "--config", str(cfg))
    assert revived.stdout.strip() == "1 dead alerts back to pending", revived.stderr
    again = run_cli("alerts", "retry", "2", "--config", str(cfg))
    assert again.stdout.strip() == "alert 2 (failed, 1 attempts) back to pending", again.stderr
    hook.status = 200
    clock.now = time.time()  # revived: due now, its age counted afresh
    assert asyncio.run(sender.deliver()) == (2, 0)
    assert [m["title"] for m in hook.received] == ["d1", "d2"]
    hook.close(), ops.close()


def test_max_age_kills_an_old_alert_without_another_attempt(tmp_path):
    hook = Webhook()
    sender, store, clock = sender_for(tmp_path, {"hook": hook.apprise_url}, titles=("old",), max_age=3600)
    clock.now = 1000.0 + 3600
    assert asyncio.run(sender.deliver()) == (0, 1)
    assert hook.answers == []
    [(state, error)] = rows(store, "SELECT state, last_error FROM outbox")
    assert state == "dead" and "dead after 1.0 h undelivered (notify.max_age)" in error
    hook.close()


def test_a_slow_or_failing_channel_does_not_hold_back_the_others(tmp_path):
    slow, fast = Webhook(delay=0.4), Webhook()
    sender, store, _ = sender_for(tmp_path, {"slow": slow.apprise_url, "fast": fast.apprise_url,
                                             "down": "json://127.0.0.1:9/nobody"})

    async def go() -> tuple[int, int]:
        tasks = await sender.start()
        for _ in range(100):
            if len(fast.received) == 3:
                break
            await asyncio.sleep(0.02)
        seen = len(fast.received), len(slow.received)
        await asyncio.gather(*tasks)
        return seen

    fast_done, slow_then = asyncio.run(go())
    assert fast_done == 3 and slow_then <= 1
    assert len(slow.received) == 3
    assert rows(store, "SELECT channel, state FROM outbox WHERE channel = 'down' ORDER BY id") == [
        ("down", "failed"), ("down", "pending"), ("down", "pending")]
    slow.close(), fast.close()


def test_retry_delay_is_full_jitter_between_retry_and_the_capped_bound():
    rng = random.Random(7)
    for attempts, bound in [(1, 10), (2, 20), (3, 40), (4, 60), (30, 60)]:
        waits = [schedule.retry_alert(0, attempts, 10, 60, rng) for _ in range(200)]
        assert min(waits) >= 10 and max(waits) <= bound
        assert attempts == 1 or max(waits) - min(waits) > bound / 4  # spread, not lock-step
    assert schedule.retry_alert(0, 1, 10, 60, rng, retry_after=500) == 500
    assert schedule.retry_alert(0, 1, 10, 60, rng, retry_after=10**9) == schedule.RETRY_AFTER_CAP
    assert schedule.retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480 - 30) == 30.0


@pytest.mark.parametrize("fields,now,expected", [
    ({}, 1000, "send"),
    ({"next_attempt_at": 1001}, 1000, "wait"),
    ({"state": "sending", "lease_until": 1001}, 1000, "wait"),  # a live lease: another sender has it
    ({"state": "sending", "lease_until": 1000}, 1000, "send"),  # the lease ran out: taken over
    ({"state": "sending"}, 1000, "send"),  # no lease: left by a version before leases
    ({"attempts": 10}, 1000, "send"),  # no answer: an outage, which only max_age ends
    ({"attempts": 10, "last_status": 503}, 1000, "send"),
    ({"attempts": 10, "last_status": 429}, 1000, "send"),
    ({"attempts": 10, "last_status": 404}, 1000, "dead"),  # refused ten times
    ({"attempts": 9, "last_status": 400}, 1000, "send"),
    ({"created_at": 0}, 172800, "dead"),
    ({"created_at": 0, "revived_at": 100000}, 172800, "send"),
])
def test_verdict(fields, now, expected):
    alert = Alert(id=1, channel="c", rule_id="r", rule_title="R", title="t", link=None, feed_title=None,
                  published=None, terms=(), snippet="", **{"created_at": 900.0, **fields})
    assert verdict(alert, now, max_attempts=10, max_age=172800) == expected


SLACK = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#news-alerts"


def test_slack_payload_as_apprise_builds_it_without_reaching_slack():
    n = Notifier({"team": Channel("team", (SLACK,), "team"),
                  "bot": Channel("bot", ("slack://xoxb-1234-1234-4ddbc191d40ee098cbaae6f3523ada2d/#ops",), "bot")})
    [req] = n.preview("team", "[Kursk region] Gefechte bei Kursk", "http://example.org/a\nMatched: Kursk")
    assert req.method == "POST"
    assert req.url == "https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ"
    assert req.headers["Content-Type"].startswith("application/json")
    payload = json.loads(req.body)
    assert payload["channel"] == "#news-alerts"
    [att] = payload["attachments"]
    assert att["title"] == "[Kursk region] Gefechte bei Kursk"
    assert att["text"] == "http://example.org/a\nMatched: Kursk"
    [bot] = n.preview("bot", "t", "b")
    assert bot.url == "https://slack.com/api/chat.postMessage"
    assert bot.headers["Authorization"] == "Bearer xoxb-1234-1234-4ddbc191d40ee098cbaae6f3523ada2d"
    assert json.loads(bot.body)["channel"] == "#ops"


def test_a_poll_that_queues_an_alert_sends_it_at_once_not_at_the_next_drain(tmp_path, feed_server, webhook,
                                                                              monkeypatch):
    """The daemon in this process, its timed outbox drain pushed an hour out: the alert of a
    story found by a poll still reaches the webhook, because the poll that queued it starts a
    delivery pass itself (before, it waited for the next drain, up to 5 s)."""
    import threading

    from conftest import wait_for
    from test_end_to_end import NEW, OLD, _feed, _serve_pages

    from monitor import config as config_mod
    from monitor import daemon as daemon_mod
    from monitor import rules

    monkeypatch.setattr(daemon_mod, "DELIVER_EVERY", 3600.0)  # the first timed drain runs 1 s after start, no other

    url = _feed(feed_server, OLD)
    _serve_pages(feed_server)
    cfg = config_mod.load(write_config(tmp_path, feeds=[url], channels={"hook": [webhook.apprise_url]}))
    d = daemon_mod.Daemon(cfg, rules.load(cfg.rules_dir))
    db = str(cfg.database)
    loop = asyncio.new_event_loop()
    failed: list[BaseException] = []

    def drive() -> None:  # the test's side, while the daemon runs on this process' main thread
        try:
            wait_for(lambda: db_rows(db, "SELECT baselined_at FROM feeds")[0][0] is not None, "baseline")
            wait_for(lambda: d.scheduler is not None and d.scheduler.get_job("deliver").next_run_time.timestamp()
                     > time.time() + 600, "the first timed drain done")
            _feed(feed_server, [NEW, *OLD])
            wait_for(lambda: len(webhook.received) == 1, "the alert sent by the poll's own drain", timeout=30)
        except BaseException as e:  # noqa: BLE001 (handed to the main thread)
            failed.append(e)
        finally:
            loop.call_soon_threadsafe(d.stop, "test done")

    threading.Thread(target=drive, daemon=True).start()
    try:
        loop.run_until_complete(d.run())
    finally:
        loop.close()
    if failed:
        raise failed[0]
    assert webhook.received[0]["title"] == NEW["title"]
    assert db_rows(db, "SELECT COUNT(*) FROM outbox WHERE state = 'sent'") == [(1,)]
