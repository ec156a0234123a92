"""JSON webhooks (issue 14): a json:// receiver on 127.0.0.1 gets one JSON object whose fields are
the alert, from the real sender draining a real outbox row, with the service's answer (status,
Retry-After) reaching the outbox as for every channel; a dry run builds the same request and
sends nothing; the URL's apprise parameters keep their meaning; a digest is one object too."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import datetime

from conftest import db_rows
from outbox_driver import seed
from servers import Webhook

from monitor.config import NotifySection
from monitor.delivery import Sender
from monitor.models import Alert, AlertRule, Channel, Digest, DigestItem
from monitor.notify import Notifier
from monitor.store import Store

OUTBOX_STATE = {"state", "attempts", "sent_at", "next_attempt_at", "last_error", "last_status", "last_attempt_at",
                "dead_at", "revived_at", "held", "digest_id", "created_at"}


def _sender(tmp_path, url: str, clock: list[float]) -> tuple[Sender, Store]:
    store = Store(tmp_path / "monitor.db")
    seed(store, ["Gefechte bei Kursk"], ("hook",), now=1_793_520_000.0)
    notifier = Notifier({"hook": Channel("hook", (url,), "hook")})
    settings = NotifySection(retry=10, max_retry=60, timeout=10)
    return Sender(store, notifier, settings, clock=lambda: clock[0], rng=random.Random(1)), store


def test_the_receiver_gets_one_object_whose_fields_are_the_alert(tmp_path):
    hook = Webhook()
    hook.script = [(429, {"Retry-After": "120"})]
    clock = [1_793_520_000.0]
    sender, store = _sender(tmp_path, hook.apprise_url, clock)
    assert asyncio.run(sender.deliver()) == (0, 1)  # refused: the answer reaches the outbox
    assert db_rows(store.path, "SELECT state, last_status, next_attempt_at FROM outbox") == [
        ("failed", 429, clock[0] + 120)]
    clock[0] += 120
    assert asyncio.run(sender.deliver()) == (1, 0)
    [got] = hook.received
    assert got["schema"] == "rss-monitor.alert/1"
    assert not OUTBOX_STATE & set(got) and "message" not in got and "version" not in got  # not apprise's envelope
    assert (got["title"], got["link"], got["feed"]) == ("Gefechte bei Kursk", "http://example.org/0", "Seed feed")
    assert got["rules"] == [{"id": "r", "title": "Rule r", "terms": ["Kursk"], "context": [], "severity": "normal",
                             "salience": None, "tier": None, "why": None, "features": None}]  # seeded without
    assert (got["terms"], got["context"], got["severity"]) == (["Kursk"], [], "normal")
    assert (got["snippet"], got["snippet_marked"]) == ("… Kursk …", "… Kursk …")
    assert got["published"] is None and got["language"] is None  # the seed entry has neither
    detected = datetime.fromisoformat(got["detected"])
    assert detected.utcoffset() is not None and detected.timestamp() == 1_793_520_000.0
    assert db_rows(store.path, "SELECT state, last_status FROM outbox") == [("sent", 200)]
    hook.close()


def _alert(**kw) -> Alert:
    base = dict(id=5, channel="hook", rule_id="kursk", rule_title="Kursk region", title="Gefechte bei Kursk",
                link="http://example.org/a", feed_title="Test feed", published="2026-11-01T08:00:00Z",
                terms=("Kursk",), snippet="bei **Kursk**", language="de", created_at=1_793_520_000.0,
                rules=(AlertRule("kursk", "Kursk region", ("Kursk",)),
                       AlertRule("nk", "North Korean troops", ("Nordkorea",), ("Russland",), "urgent")))
    return Alert(**{**base, **kw})


def test_dry_run_builds_the_post_and_sends_nothing_and_url_parameters_keep_their_meaning():
    hook = Webhook()
    url = hook.apprise_url.replace("json://", "json://ops:s3cret@") + "?+X-Team=osint&-src=rss&:channel=&:via=rss"
    n = Notifier({"hook": Channel("hook", (url,), "hook")})
    [req] = n.preview_alert(_alert())
    assert hook.received == [] and hook.answers == []
    assert req.method == "POST" and req.url == f"http://127.0.0.1:{hook.port}/hook?src=rss"
    assert req.headers["X-Team"] == "osint" and req.headers["Content-Type"] == "application/json"
    assert req.headers["Authorization"].startswith("Basic ")
    doc = json.loads(req.body)
    assert "channel" not in doc and doc["via"] == "rss"  # ':channel=' drops a key, ':via=rss' adds one
    assert doc["severity"] == "urgent" and [r["id"] for r in doc["rules"]] == ["kursk", "nk"]
    n.send(_alert())  # the same object, for real
    assert hook.received == [doc]
    hook.close()


def test_a_digest_is_one_object_with_its_items():
    hook = Webhook()
    n = Notifier({"hook": Channel("hook", (hook.apprise_url,), "hook")})
    digest = Digest(11, "hook", (DigestItem(_alert(id=6), "quiet"),
                                 DigestItem(_alert(id=7, title="Alt"), "followup", (("Feed 2", "http://b/2"),))),
                    held_back=2, rate_limit="5/h")
    n.send_digest(digest)
    [got] = hook.received
    assert (got["schema"], got["id"], got["channel"], got["count"]) == ("rss-monitor.digest/1", 11, "hook", 1)
    assert (got["title"], got["held_back"], got["rate_limit"]) == ("Digest: 1 alerts, 1 more sources", 2, "5/h")
    first, second = got["items"]
    assert (first["id"], first["reason"], first["sources"], first["severity"]) == (6, "quiet", [], "urgent")
    assert "schema" not in first and not OUTBOX_STATE & set(first)
    assert (second["reason"], second["sources"]) == ("followup", [{"feed": "Feed 2", "link": "http://b/2"}])
    hook.close()


def test_a_channel_with_a_webhook_and_a_text_url_sends_each_its_kind(caplog):
    hook = Webhook()
    n = Notifier({"both": Channel("both", (hook.apprise_url, "log://"), "both")})
    with caplog.at_level("INFO", logger="monitor.alerts"):
        n.send(_alert(channel="both"))
    assert hook.received[0]["schema"] == "rss-monitor.alert/1"
    assert "Rules: Kursk region, North Korean troops" in caplog.text
    hook.close()
