"""Alert messages per channel kind: hostile feed text stays text in every kind, every kind names
the story's rules, terms and context words alike, a user's template replaces a built-in one, a
broken template is a config error naming file and line, and the real receivers (a JSON webhook,
aiosmtpd) get what the templates say."""

from __future__ import annotations

import dataclasses
import json

import pytest
from conftest import run_cli, write_config

from monitor import config
from monitor.errors import ConfigError
from monitor.models import Alert, AlertRule, Channel, Digest, DigestItem
from monitor.notify import Notifier, channels_from
from monitor.render import NAMES, Renderer, kind

SLACK = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#news-alerts"
HOSTILE = Alert(id=7, channel="x", rule_id="kursk", rule_title="Kursk & <region>",
                title='<script>alert(1)</script> Kursk & "Co" *now* > 5', link="https://example.org/a?x=1&y=2",
                feed_title="News & <Views>", published="2026-11-01T08:00:00Z", terms=("Kursk", "<b>"),
                snippet="a <b> & **Kursk** > *c*", severity="urgent", language="de")
TITLE = '[Kursk & <region>] <script>alert(1)</script> Kursk & "Co" *now* > 5'
# one story, two rules: the lead (Kursk) and North Korean troops, whose war context words hit too
TWO = Alert(id=9, channel="x", rule_id="kursk", rule_title="Kursk region", title="Nordkoreaner bei Kursk",
            link="https://example.org/nk", feed_title="Test feed", published="2026-11-01T08:00:00Z",
            terms=("Kursk",), snippet="**Nordkoreanische Soldaten** bei **Kursk** in **Russland**", language="de",
            created_at=1793520000.0, rules=(
                AlertRule("kursk", "Kursk region", ("Kursk",), (), "normal", 0.62, "alert", (
                    ("title", 1), ("lead", 0), ("sentences", 2), ("of", 14), ("together", None), ("quoted", 0),
                    ("aside", 0), ("listed", 0))),
                AlertRule("north-korean-troops", "North Korean troops", ("nordkoreanisch", "Soldat"),
                          ("Russland", "Kursk"), "urgent")))  # stored before salience: none


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
        "*Urgent* · Rule: Kursk &amp; &lt;region&gt;",
        "Matched: Kursk, &lt;b&gt;",
        "",
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
        "<p>Rule: Kursk &amp; &lt;region&gt;<br>Matched: Kursk, &lt;b&gt;</p>",
        '<blockquote style="border-left: 3px solid #ccc; margin: 0; padding-left: 8px">a &lt;b&gt; &amp; '
        "<strong>Kursk</strong> &gt; *c*</blockquote>",
        "</body></html>",
    ]


def test_json_is_the_alert_in_its_schema_without_outbox_state():
    sent = dataclasses.replace(HOSTILE, state="sent", attempts=3, sent_at=1.0, next_attempt_at=2.0,
                               last_error="HTTP 503", created_at=1793520000.0)
    title, body, fmt = Renderer().render(sent, "json")
    assert (title, fmt) == (TITLE, "text")
    data = json.loads(body)
    assert set(data) == {"schema", "id", "channel", "title", "link", "feed", "published", "detected", "language",
                         "severity", "rules", "terms", "context", "snippet", "snippet_marked", "feedback"}
    assert data["feedback"] is None  # no [web] public_url: no links (test_feedback.py has them)
    assert data["schema"] == "rss-monitor.alert/1"
    assert (data["published"], data["detected"]) == ("2026-11-01T08:00:00Z", "2026-11-01T08:00:00Z")
    assert data["title"] == HOSTILE.title and data["feed"] == "News & <Views>"
    assert (data["snippet"], data["snippet_marked"]) == ("a <b> & Kursk > *c*", HOSTILE.snippet)
    # an old row lists no rules: its lead rule is the one
    assert data["rules"] == [{"id": "kursk", "title": "Kursk & <region>", "terms": ["Kursk", "<b>"],
                              "context": [], "severity": "urgent", "salience": None, "tier": None, "why": None,
                              "features": None}]  # nor salience: matched before it
    assert data["severity"] == "urgent" and data["language"] == "de"


@pytest.mark.parametrize("published,expected", [
    ("2026-11-01T08:00:00Z", "2026-11-01T08:00:00Z"), ("2026-11-01T10:00:00+02:00", "2026-11-01T10:00:00+02:00"),
    ("2026-11-01T08:00:00", "2026-11-01T08:00:00Z"), ("2026-11-03", "2026-11-03T00:00:00Z"), (None, None),
    ("yesterday", None),
])
def test_json_times_are_iso_8601_with_their_zone(published, expected):
    data = json.loads(Renderer().render(dataclasses.replace(HOSTILE, published=published), "json").body)
    assert data["published"] == expected


def test_a_two_rule_story_names_both_rules_the_same_way_on_every_kind():
    r = Renderer()
    text = r.render(TWO, "text")
    assert text.title == "[Kursk region, North Korean troops] Nordkoreaner bei Kursk"
    assert text.body.split("\n") == [
        "Nordkoreaner bei Kursk", "https://example.org/nk", "Source: Test feed · 2026-11-01 08:00 UTC · de",
        "Severity: urgent",  # the highest of the two rules'
        "Rules: Kursk region, North Korean troops",
        "Matched: Kursk, nordkoreanisch, Soldat · context: Russland",  # Kursk is a topic term of one rule
        "", "> **Nordkoreanische Soldaten** bei **Kursk** in **Russland**"]
    slack = r.render(TWO, "slack").body.split("\n")
    assert slack[2:] == ["**Urgent** · Rules: Kursk region, North Korean troops",
                         "Matched: Kursk, nordkoreanisch, Soldat · context: Russland", "",
                         "> **Nordkoreanische Soldaten** bei **Kursk** in **Russland**"]
    email = r.render(TWO, "email")
    assert email.title == text.title
    assert "<br>Severity: urgent</p>" in email.body
    assert ("<p>Rules: Kursk region, North Korean troops<br>Matched: Kursk, nordkoreanisch, Soldat · context: "
            "Russland</p>\n<blockquote") in email.body
    data = json.loads(r.render(TWO, "json").body)
    assert data["severity"] == "urgent" and data["detected"] == "2026-11-01T08:00:00Z"
    assert data["rules"] == [  # each rule with how much the story is about its topic (issue 17)
        {"id": "kursk", "title": "Kursk region", "terms": ["Kursk"], "context": [], "severity": "normal",
         "salience": 0.62, "tier": "alert", "why": "title; 2 of 14 sentences", "features": {
             "title": 1, "lead": 0, "sentences": 2, "of": 14, "together": None, "quoted": 0, "aside": 0, "listed": 0}},
        {"id": "north-korean-troops", "title": "North Korean troops", "terms": ["nordkoreanisch", "Soldat"],
         "context": ["Russland", "Kursk"], "severity": "urgent", "salience": None, "tier": None, "why": None,
         "features": None}]
    assert (data["terms"], data["context"]) == (["Kursk", "nordkoreanisch", "Soldat"], ["Russland"])


def test_matched_keeps_a_rules_context_words_apart_from_its_terms():
    one = dataclasses.replace(HOSTILE, rule_title="North Korean troops", terms=("North Korean", "troops"),
                              context=("Russia", "Ukraine"), severity="normal", language=None, snippet="")
    body = Renderer().render(one, "text").body
    assert body.endswith("Rule: North Korean troops\nMatched: North Korean, troops · context: Russia, Ukraine")


def test_text_keeps_the_feed_text_as_it_is():
    title, body, fmt = Renderer().render(dataclasses.replace(HOSTILE, severity="normal", language=None), "text")
    assert (title, fmt) == (TITLE, "text")
    assert body.split("\n") == [HOSTILE.title, HOSTILE.link, "Source: News & <Views> · 2026-11-01 08:00 UTC",
                                "Rule: Kursk & <region>", "Matched: Kursk, <b>", "", "> a <b> & **Kursk** > *c*"]


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
    (tmp_path / "json.j2").write_text("{{ [alert.title] | json }}")  # JSON, but not one object to post
    with pytest.raises(ConfigError, match=r"json\.j2: does not render valid JSON: expected one JSON object"):
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
    [got] = webhook.received  # one object, the alert's fields at the top: nothing to parse twice
    assert got == {**json.loads(Renderer().render(HOSTILE, "json").body), "channel": "hook"}
    assert got["title"] == HOSTILE.title and got["snippet_marked"] == HOSTILE.snippet

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
        "Severity: urgent", "Rule: Kursk & <region>", "Matched: Kursk, <b>", ">a <b> & Kursk > *c*"]


@pytest.mark.parametrize("url,footer", [
    (SLACK, False),
    (SLACK + "?footer=yes", True),  # asked for: kept
    ("https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ", False),
    ("slack://xoxb-1234-1234-4ddbc191d40ee098cbaae6f3523ada2d/#ops?IMAGE=yes", False),
])
def test_slack_carries_no_apprise_footer_or_icon_unless_the_url_asks(url, footer):
    n = Notifier({"team": Channel("team", (url,), "team")})
    [req] = n.preview_alert(dataclasses.replace(HOSTILE, channel="team"))
    payload = json.loads(req.body)
    [att] = payload["attachments"]
    assert ("footer" in att) is footer and ("footer_icon" in att) is (footer and "image=yes" in url.lower())
    assert ("icon_url" in payload) is ("image=yes" in url.lower())
    assert att["text"].endswith("\n\n> a &lt;b&gt; &amp; *Kursk* &gt; \\*c\\*")  # the snippet stands apart
    if "#" in url:  # the appended parameters leave the #channel where apprise reads it
        assert payload["channel"] == "#" + url.split("#")[1].split("?")[0]


def _digest(*items: DigestItem) -> Digest:
    return Digest(3, "x", items)


def test_digest_lists_a_first_polls_stories_under_while_you_were_away():
    r = Renderer()
    old = dataclasses.replace(TWO, title="Alte Meldung", published="2026-10-31T20:00:00Z")
    title, body = r.digest(_digest(DigestItem(TWO, "quiet"), DigestItem(old, "backlog")))
    assert title == "Digest: 2 alerts (1 while you were away)"
    assert body.split("\n") == [
        "Kursk region, North Korean troops", "- Nordkoreaner bei Kursk [urgent]",
        "  Test feed · 2026-11-01 08:00 UTC", "  https://example.org/nk", "",
        "While you were away (new feeds, their recent stories):", "",
        "Kursk region, North Korean troops", "- Alte Meldung [urgent]",
        "  Test feed · 2026-10-31 20:00 UTC", "  https://example.org/nk"]
    title, body = r.digest(_digest(DigestItem(old, "backlog"), DigestItem(TWO, "backlog")))
    assert title == "While you were away: 2 alerts"
    assert body.startswith("While you were away (new feeds, their recent stories):\n\nKursk region, North Korean")
    assert r.digest_json(_digest(DigestItem(old, "backlog")))["title"] == "While you were away: 1 alerts"


FEATURES = (("title", 1), ("lead", 1), ("sentences", 6), ("of", 14), ("together", 1),
            ("quoted", 0), ("aside", 0), ("listed", 0))


def test_an_alert_says_why_in_every_kind_and_an_old_one_says_nothing():
    one = dataclasses.replace(HOSTILE, severity="normal", language=None, salience=0.93, tier="alert",
                              features=FEATURES)
    why = "Why: alert · salience 0.93 · title and lead; 6 of 14 sentences; parts in one sentence"
    r = Renderer()
    assert why in r.render(one, "text").body.split("\n")
    assert why in r.render(one, "slack").body.split("\n")
    assert "<br>" + why + "</p>" in r.render(one, "email").body
    assert "Why:" not in r.render(dataclasses.replace(one, features=()), "text").body  # before migration 13
    # a story of several rules: each rule's own, named as the Rules: line names it
    quoted = dict(FEATURES) | {"title": 0, "lead": 0, "sentences": 1, "together": None, "quoted": 1}
    two = dataclasses.replace(TWO, salience=0.93, tier="alert", features=FEATURES, rules=(
        dataclasses.replace(TWO.rules[0], salience=0.93, tier="alert", features=FEATURES),
        dataclasses.replace(TWO.rules[1], salience=0.34, tier="digest", features=tuple(quoted.items()))))
    line = ("Why: Kursk region: alert · salience 0.93 · title and lead; 6 of 14 sentences; parts in one sentence"
            " | North Korean troops: digest · salience 0.34 · 1 of 14 sentences; only in quotes")
    assert line in r.render(two, "text").body.split("\n") and line in r.render(two, "slack").body.split("\n")


def test_digest_lists_mentions_under_also_mentioned():
    quoted = dict(FEATURES) | {"title": 0, "lead": 0, "sentences": 1, "of": 90, "together": None, "quoted": 1}
    mention = dataclasses.replace(TWO, id=10, title="Haushalt beschlossen", salience=0.25, tier="digest",
                                  features=tuple(quoted.items()))
    title, body = Renderer().digest(_digest(DigestItem(TWO, "digest"), DigestItem(mention, "mention")))
    assert title == "Digest: 2 alerts"
    lines = body.split("\n")
    at = lines.index("Also mentioned (below the rules' alert_at):")
    assert "- Nordkoreaner bei Kursk [urgent]" in lines[:at]
    assert lines[at + 2:at + 4] == ["Kursk region, North Korean troops", "- Haushalt beschlossen [urgent]"]
    assert "Haushalt" not in "\n".join(lines[:at])
    only = Renderer().digest(_digest(DigestItem(mention, "mention")))[1]
    assert only.startswith("Also mentioned (below the rules' alert_at):")
    # why it is only a mention, and, with [web] public_url, its own links: judged where it is read
    assert "  Why: digest · salience 0.25 · 1 of 90 sentences; only in quotes; long article" in lines
    links = {mention.id: {"relevant": "https://m/feedback/r", "not": "https://m/feedback/n"}}
    digest = _digest(DigestItem(TWO, "followup"), DigestItem(mention, "mention"))
    links[TWO.id] = {"relevant": "https://m/feedback/x", "not": "https://m/feedback/y"}  # not shown: a follow-up
    lines = Renderer().digest(digest, links)[1].split("\n")
    at = lines.index("- Haushalt beschlossen [urgent]")
    assert lines[at + 4:at + 6] == ["  Relevant: https://m/feedback/r", "  Not relevant: https://m/feedback/n"]
    assert sum("feedback" in line for line in lines) == 2  # a follow-up has none
    items = Renderer().digest_json(digest, links)["items"]
    assert [i["feedback"] for i in items] == [None, links[mention.id]]


def test_the_built_in_templates_pass_the_check_a_users_folder_gets(tmp_path):
    """``Renderer()`` does not render its samples at every start (issue 16); an empty folder falls
    back to every built-in template and runs the check on them."""
    Renderer(tmp_path)._check()
    Renderer()._check()
