"""Channels built from the config: URL checking, routing by name or tag, rendering, and what
apprise says when a channel fails."""

from __future__ import annotations

import pytest

from monitor.errors import ConfigError, NotifyError
from monitor.models import Alert, Channel
from monitor.notify import Notifier, render

SLACK = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#news-alerts"


def _alert(channel: str, **kw) -> Alert:
    base = dict(id=1, channel=channel, rule_id="kursk", rule_title="Kursk region",
                title="Gefechte bei Kursk", link="http://example.org/a", feed_title="Test feed",
                published="2026-11-01T08:00:00Z", terms=("Kursk",), snippet="bei **Kursk**")
    return Alert(**{**base, **kw})


def test_slack_url_is_accepted_and_logged_without_secrets():
    n = Notifier({"team": Channel("team", (SLACK,), "team")})
    [shown] = n.describe("team")
    assert shown.startswith("slack://")
    assert "TIiajkdnlazkcOXrIdevi7FQ" not in shown and "A1BRTD4JD" not in shown
    assert "news-alerts" in shown


def test_pasted_slack_webhook_url_is_accepted():
    url = "https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ"
    Notifier({"team": Channel("team", (url,), "team")})


@pytest.mark.parametrize("url", ["nonsense://x", "slack://onlyone", "mailto://"])
def test_unusable_urls_are_refused_by_name(url):
    with pytest.raises(ConfigError, match=r"channels\.bad\.urls\[0\]"):
        Notifier({"bad": Channel("bad", (url,), "bad")})


def test_targets_resolve_names_and_tags():
    n = Notifier({"a": Channel("a", ("log://",), "team"), "b": Channel("b", ("log://",), "team"),
                  "c": Channel("c", ("log://",), "c")})
    assert n.targets(["team"]) == ("a", "b")
    assert n.targets(["c", "a", "team"]) == ("c", "a", "b")
    assert n.targets(["nowhere"]) == ()
    assert n.known() == {"a", "b", "c", "team"}


def test_render_names_rule_headline_source_terms_and_snippet():
    title, body = render(_alert("x"))
    assert title == "[Kursk region] Gefechte bei Kursk"
    assert "http://example.org/a" in body and "Test feed · 2026-11-01 08:00 UTC" in body
    assert "Matched: Kursk (rule kursk)" in body and body.endswith("bei **Kursk**")


def test_log_channel_writes_the_alert_to_the_log(caplog):
    n = Notifier({"console": Channel("console", ("log://",), "console")})
    with caplog.at_level("INFO", logger="monitor.alerts"):
        n.send(_alert("console"))
    assert "ALERT [Kursk region] Gefechte bei Kursk" in caplog.text


def test_failure_says_what_the_service_answered(webhook):
    webhook.status = 503
    n = Notifier({"hook": Channel("hook", (webhook.apprise_url,), "hook")})
    with pytest.raises(NotifyError, match="503"):
        n.send(_alert("hook"))
    webhook.status = 200
    n.send(_alert("hook"))
    assert webhook.received[0]["title"] == "[Kursk region] Gefechte bei Kursk"


def test_channel_gone_from_config():
    n = Notifier({})
    with pytest.raises(NotifyError, match="no longer in the config"):
        n.send(_alert("old"))
