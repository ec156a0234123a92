"""Alert messages per channel kind: hostile feed text stays text in every kind, a user's template
replaces a built-in one, a broken template is a config error naming file and line, and the
real receivers (a JSON webhook, aiosmtpd) get what the templates say."""

from __future__ import annotations

import dataclasses
import json

import pytest
from conftest import run_cli, write_config

from monitor import config
from monitor.errors import ConfigError
from monitor.models import Alert, Channel
from monitor.notify import Notifier, channels_from
from monitor.render import NAMES, Renderer, kind

SLACK = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#news-alerts"
HOSTILE = Alert(id=7, channel="x", rule_id="kursk", rule_title="Kursk & <region>",
                title='<script>alert(1)</script> Kursk & "Co" *now* > 5', link="https://example.org/a?x=1&y=2",
                feed_title="News & <Views>", published="2026-11-01T08:00:00Z", terms=("Kursk", "<b>"),
                snippet="a <b> & **Kursk** > *c*", severity="urgent", language="de")
TITLE = '[Kursk & <region>] <script>alert(1)</script> Kursk & "Co" *now* > 5'


@pytest.mark.parametrize("url,expected", [
    (SLACK, "slack"), ("mailto://u:p@example.org", "email"), ("mailtos://u:p@example.org", "email"),
    ("json://127.0.0.1/hook", "json"), ("jsons://example.org/hook", "json"), ("ntfy://topic", "text"),
    ("log://", "text"), ("form://example.org", "text"),
])
def test_kind_follows_the_url_scheme(url, expected):
    assert kind(url) == expected


def test_slack_payload_links_the_title_bolds_the_hits_and_escapes_the_feed():
    n = Notifier({"team": Channel("team", (SLACK,), "team")})
    [req] = n.preview_alert(dataclasses.replace(HOSTILE, channel="team"))
    payload = json.loads(req.body)
    assert payload["mrkdwn"] is True
    [att] = payload["attachments"]
    assert att["title"] == TITLE.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert att["text"].split("\n") == [
        '*<https://example.org/a?x=1&amp;y=2|&lt;script&gt;alert(1)&lt;/script&gt; Kursk &amp; "Co" \\*now\\* '
        '&gt; 5>*',
        "News &amp; &lt;Views&gt; · 2026-11-01 08:00 UTC · de",
        "*Urgent* · Matched: Kursk, &lt;b&gt; (rule kursk)",
        "> a &lt;b&gt; &amp; *Kursk* &gt; \\*c\\*",
    ]
    assert payload["attachments"][0]["color"] == "#CACF29"  # urgent goes as apprise's "warning"


def test_slack_feed_text_cannot_ping_a_channel_or_plant_a_link():
    n = Notifier({"team": Channel("team", (SLACK,), "team")})
    evil = dataclasses.replace(HOSTILE, channel="team", title="<!channel> [x](http://evil.example) <http://evil|y>",
                               snippet="<!here> **hit**", link=None)
    text = json.loads(n.preview_alert(evil)[0].body)["attachments"][0]["text"]
    assert "<!" not in text and "<http://evil" not in text and "|y>" not in text
    assert text.startswith("*&lt;!channel&gt; [x](http://evil.example) &lt;http://evil|y&gt;*\n")


def test_email_html_escapes_everything_from_the_feed():
    title, body, fmt = Renderer().render(HOSTILE, "email")
    assert (title, fmt) == (TITLE, "html")
    assert body.split("\n") == [
        '<html><body style="font-family: sans-serif">',
        '<h2 style="margin: 0 0 4px"><a href="https://example.org/a?x=1&amp;y=2">&lt;script&gt;alert(1)&lt;/script&gt;'
        ' Kursk &amp; &#34;Co&#34; *now* &gt; 5</a></h2>',
        '<p style="margin: 0; color: #666">https://example.org/a?x=1&amp;y=2</p>',
        "<p>Source: News &amp; &lt;Views&gt;<br>Time: 2026-11-01 08:00 UTC<br>Language: de<br>Severity: urgent</p>",
        "<p>Matched: Kursk, &lt;b&gt; (rule Kursk &amp; &lt;region&gt;)</p>",
        '<blockquote style="border-left: 3px solid #ccc; margin: 0; padding-left: 8px">a &lt;b&gt; &amp; '
        "<strong>Kursk</strong> &gt; *c*</blockquote>",
        "</body></html>",
    ]


def test_json_carries_every_field_of_the_alert():
    title, body, fmt = Renderer().render(HOSTILE, "json")
    assert (title, fmt) == (TITLE, "text")
    data = json.loads(body)
    assert set(data) == {f.name for f in dataclasses.fields(Alert)}
    assert data["title"] == HOSTILE.title and data["snippet"] == HOSTILE.snippet
    assert data["terms"] == ["Kursk", "<b>"] and data["severity"] == "urgent" and data["language"] == "de"


def test_text_keeps_the_feed_text_as_it_is():
    title, body, fmt = Renderer().render(dataclasses.replace(HOSTILE, severity="normal", language=None), "text")
    assert (title, fmt) == (TITLE, "text")
    assert body.split("\n") == [HOSTILE.title, HOSTILE.link, "Source: News & <Views> · 2026-11-01 08:00 UTC",
                                "Matched: Kursk, <b> (rule kursk)", "", "a <b> & **Kursk** > *c*"]


def test_a_template_in_the_users_folder_replaces_the_built_in_one(tmp_path):
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "text.j2").write_text("{{ alert.rule_id }}: {{ alert.title | upper }}\n")
    (tmp_path / "templates" / "title.j2").write_text("NEWS {{ alert.title[:8] }}")
    path = write_config(tmp_path, feeds=[], channels={"console": ["log://"]})
    cfg = config.load(path)
    assert cfg.channels["console"].templates == str(tmp_path / "templates")
    n = Notifier(channels_from(cfg.channels))
    r = n._renderers[str(tmp_path / "templates")]
    assert r.render(HOSTILE, "text") == ("NEWS <script>", "kursk: " + HOSTILE.title.upper(), "text")
    assert r.render(HOSTILE, "slack").body.startswith("**[\\<script")  # the others stay built-in


def test_a_named_templates_folder_must_exist(tmp_path):
    path = write_config(tmp_path, feeds=[], channels={"console": ["log://"]}, extra='templates = "nowhere"')
    with pytest.raises(ConfigError, match=r"notify\.templates: no such folder .*nowhere"):
        config.load(path)


@pytest.mark.parametrize("name,text,line,problem", [
    ("slack.j2", "ok\n{{ alert.title | md }\n", 2, "TemplateSyntaxError"),
    ("email_html.j2", "<p>\n{% if alert.title %}\n{{ alert.title }}\n", 3, "TemplateSyntaxError"),
    ("text.j2", "{{ alert.title }}\n{{ alert.nothing.deeper }}\n", 2, "UndefinedError"),
    ("text.j2", "{{ alert.__class__.__mro__ }}\n", 1, "SecurityError"),  # the sandbox
    ("title.j2", "{{ alert.title | nosuchfilter }}", 1, "TemplateAssertionError"),
])
def test_a_broken_template_is_a_config_error_naming_file_and_line(tmp_path, name, text, line, problem):
    (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError) as e:
        Renderer(tmp_path)
    assert str(e.value).startswith(f"{tmp_path / name}:{line}: template error: {problem}")


def test_json_template_must_render_json_and_unknown_files_are_named(tmp_path):
    (tmp_path / "json.j2").write_text("{{ alert.title }}")
    with pytest.raises(ConfigError, match=r"json\.j2: does not render valid JSON"):
        Renderer(tmp_path)
    (tmp_path / "json.j2").unlink()
    (tmp_path / "slak.j2").write_text("x")
    with pytest.raises(ConfigError, match=r"unknown template slak\.j2 \(expected one of: " + ", ".join(NAMES)):
        Renderer(tmp_path)


def test_monitor_check_reports_a_broken_template(tmp_path):
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "slack.j2").write_text("line one\n{% for x in alert.terms %}\n")
    path = write_config(tmp_path, feeds=[], channels={"console": ["log://"]})
    result = run_cli("check", "--config", str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{tmp_path / 'templates' / 'slack.j2'}:2: template error: TemplateSyntaxError" in result.stderr


def test_a_template_failing_on_one_alert_falls_back_to_the_built_in(tmp_path, caplog):
    (tmp_path / "text.j2").write_text("{{ alert.title }}\n{{ alert.language.upper() }}\n")
    r = Renderer(tmp_path)  # fine for the sample alert at start-up, which has a language
    assert r.render(HOSTILE, "text").body == HOSTILE.title + "\nDE"
    with caplog.at_level("ERROR", logger="monitor.render"):
        body = r.render(dataclasses.replace(HOSTILE, language=None), "text").body
    assert body.startswith(HOSTILE.title + "\n" + HOSTILE.link)  # the built-in one
    assert f"at={tmp_path / 'text.j2'}:2" in caplog.text and "using the built-in one" in caplog.text


def test_webhook_and_smtp_receive_the_rendered_kinds(webhook, smtp):
    smtp.start()
    n = Notifier({"hook": Channel("hook", (webhook.apprise_url,), "hook"),
                  "mail": Channel("mail", (smtp.apprise_url,), "mail")})
    n.send(dataclasses.replace(HOSTILE, channel="hook"))
    [got] = webhook.received
    assert got["title"] == TITLE and got["type"] == "warning"
    data = json.loads(got["message"])
    assert data == {**json.loads(json.dumps(dataclasses.asdict(HOSTILE))), "channel": "hook"}

    n.send(dataclasses.replace(HOSTILE, channel="mail"))
    [mail] = smtp.messages
    assert mail["Subject"] == TITLE
    assert mail.get_content_type() == "multipart/alternative"
    text, html = (p.get_payload(decode=True).decode() for p in mail.get_payload())
    assert "<h2" in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    assert "<strong>Kursk</strong>" in html
    # apprise derives the plain-text part from the HTML: the feed's text again, unescaped
    assert [line for line in text.split("\r\n") if line] == [
        HOSTILE.title, HOSTILE.link, "Source: News & <Views>", "Time: 2026-11-01 08:00 UTC", "Language: de",
        "Severity: urgent", "Matched: Kursk, <b> (rule Kursk & <region>)", ">a <b> & Kursk > *c*"]
