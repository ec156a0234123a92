"""Channels built from the config: URL checking, routing by name or tag, rendering, and what
apprise says when a channel fails."""

from __future__ import annotations

import pytest

from monitor.errors import ConfigError, NotifyError
from monitor.models import Alert, Channel
from monitor.notify import Notifier, quiet_slack, render

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
    assert "Rule: Kursk region\nMatched: Kursk\n\n> bei **Kursk**" in body  # the snippet stands apart


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
    assert webhook.received[0]["title"] == "Gefechte bei Kursk"


def test_webhook_failure_and_retry_after_reach_the_answer(webhook):
    webhook.script = [(429, {"Retry-After": "30"})]
    n = Notifier({"hook": Channel("hook", (webhook.apprise_url,), "hook")})
    with pytest.raises(NotifyError) as e:
        n.send(_alert("hook"))
    assert (e.value.status, e.value.retry_after) == (429, 30.0)
    assert "HTTP 429" in str(e.value) and webhook.received == []


def test_webhook_that_does_not_answer_is_a_failure_naming_the_host():
    from servers import free_port

    n = Notifier({"hook": Channel("hook", (f"json://127.0.0.1:{free_port()}/hook",), "hook")})
    with pytest.raises(NotifyError, match=r"ConnectionError from 127\.0\.0\.1"):
        n.send(_alert("hook"))


@pytest.mark.parametrize("url,expected", [
    ("slack://a/b/c/#news", "slack://a/b/c/#news?footer=no&image=no"),
    ("slack://a/b/c/#news?footer=yes", "slack://a/b/c/#news?footer=yes&image=no"),
    ("slack://a/b/c/?Image=yes&footer=no", "slack://a/b/c/?Image=yes&footer=no"),
])
def test_quiet_slack_adds_only_what_the_url_does_not_say(url, expected):
    assert quiet_slack(url) == expected


def test_channel_gone_from_config():
    n = Notifier({})
    with pytest.raises(NotifyError, match="no longer in the config"):
        n.send(_alert("old"))
