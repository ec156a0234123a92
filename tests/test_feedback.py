"""The team's feedback (issue 17): signed one-click links followed against the real daemon's HTTP
endpoint (valid, replayed, forged, expired, unknown alert), verdicts through the real CLI, the
feedback table's replace-and-keep-history rule and per-rule reading, /metrics and `alerts show`."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import db_rows, monitor_cmd, page, rss, run_cli, write_config
from conftest import wait_for as _wait
from outbox_driver import FEED
from servers import free_port

from monitor import config, links, render, web
from monitor.errors import ConfigError
from monitor.models import Entry, FeedUpdate, Match
from monitor.store import Store

KEY = b"k" * 32
NOW = 1_790_000_000.0


def _http(url: str, post: bool = False) -> tuple[int, str]:
    req = urllib.request.Request(url, data=b"" if post else None, method="POST" if post else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


# -- the token: pure ------------------------------------------------------------------------------
def test_a_token_carries_alert_verdict_expiry_and_any_changed_byte_is_forged():
    token = links.mint(KEY, 12, "relevant", NOW + 60)
    assert token.startswith("12.relevant.1790000060.")
    claim = links.check(KEY, token, NOW)
    assert (claim.alert_id, claim.verdict, claim.expires) == (12, "relevant", NOW + 60)
    assert claim.token_id == links.token_id(token) and claim.token_id != links.token_id(
        links.mint(KEY, 12, "not", NOW + 60))
    forgeries = [token.replace("12.", "13.", 1), token.replace("relevant", "not"),
                 token.replace(".1790000060.", ".1890000060."), token[:-1] + ("A" if token[-1] != "A" else "B")]
    for bad in forgeries:
        with pytest.raises(links.BadLink) as e:
            links.check(KEY, bad, NOW)
        assert e.value.kind == "forged", bad
    with pytest.raises(links.BadLink) as e:
        links.check(b"another key" * 3, token, NOW)
    assert e.value.kind == "forged"
    with pytest.raises(links.BadLink) as e:
        links.check(KEY, token, NOW + 60)  # expiry is exclusive
    assert e.value.kind == "expired" and "expired on" in e.value.why
    for junk in ("", "x", "1.relevant", "a.relevant.1.sig", "1.relevant.1.sig.more"):
        with pytest.raises(links.BadLink) as e:
            links.check(KEY, junk, NOW)
        assert e.value.kind == "malformed"


def test_a_token_may_judge_one_rule_and_its_rule_is_signed_too():
    token = links.mint(KEY, 12, "not", NOW + 60, rule="north-korean-troops")
    assert token.startswith("12.not.north-korean-troops.1790000060.")
    claim = links.check(KEY, token, NOW)
    assert (claim.alert_id, claim.verdict, claim.rule, claim.expires) == (12, "not", "north-korean-troops", NOW + 60)
    assert links.check(KEY, links.mint(KEY, 12, "not", NOW + 60), NOW).rule is None
    for bad in (token.replace("north-korean-troops", "kursk"), token.replace(".north-korean-troops", ""),
                links.mint(KEY, 12, "not", NOW + 60).replace(".1790000060.", ".kursk.1790000060.")):
        with pytest.raises(links.BadLink) as e:
            links.check(KEY, bad, NOW)
        assert e.value.kind == "forged", bad
    for junk in ("12.not.Kursk!.1790000060.sig", "12.not..1790000060.sig"):
        with pytest.raises(links.BadLink) as e:
            links.check(KEY, junk, NOW)
        assert e.value.kind == "malformed", junk
    with pytest.raises(ValueError, match="not a rule ID"):
        links.mint(KEY, 12, "not", NOW + 60, rule="a.b")
    made = links.Links("https://m.example/", lambda: KEY, 60, clock=lambda: NOW)
    assert "rules" not in made.urls(3, ["kursk"])  # one rule: the story's links are that rule's
    both = made.urls(3, ["kursk", "north-korean-troops"])
    assert [r["rule"] for r in both["rules"]] == ["kursk", "north-korean-troops"]
    assert links.check(KEY, both["rules"][1]["not"].rsplit("/", 1)[1], NOW).rule == "north-korean-troops"


def test_the_page_escapes_everything_and_has_no_script():
    out = web.html(web.Page(200, "<b>T</b>", "Alert 1: <script>alert(1)</script> & co", "Record: <i>"))
    assert "<script" not in out and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in out
    assert "<title>&lt;b&gt;T&lt;/b&gt;</title>" in out
    assert '<form method="post"><button type="submit">Record: &lt;i&gt;' in out
    assert "<form" not in web.html(web.Page(403, "Link forged", "why"))


def test_the_generated_key_is_made_once_private_and_kept(tmp_path):
    path = tmp_path / "monitor.db.link-key"
    first = links.key("", path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(first) == 64
    assert links.key("", path) == first  # read back, not made again
    assert links.key("configured", path) == b"configured"
    path.write_text("short\n")
    with pytest.raises(OSError, match="too short"):
        links.key("", path)
    assert [p.name for p in tmp_path.iterdir()] == ["monitor.db.link-key"]  # no temporary file left


def test_every_message_kind_carries_the_two_links_only_when_given():
    urls = {"relevant": "https://m.example/feedback/7.relevant.9.s", "not": "https://m.example/feedback/7.not.9.s"}
    r = render.builtin()
    for kind in ("slack", "text", "email"):
        body = r.render(render.SAMPLE, kind, urls).body
        assert urls["relevant"] in body and urls["not"] in body, kind
        assert "feedback/" not in r.render(render.SAMPLE, kind).body, kind
    assert json.loads(r.render(render.SAMPLE, "json", urls).body)["feedback"] == urls
    assert json.loads(r.render(render.SAMPLE, "json").body)["feedback"] is None
    # a story that fired two rules: a pair of links for each rule too
    per = {**urls, "rules": [{"rule": x, "relevant": f"https://m.example/feedback/7.relevant.{x}.9.s",
                              "not": f"https://m.example/feedback/7.not.{x}.9.s"}
                             for x in ("kursk", "north-korean-troops")]}
    for kind in ("slack", "text", "email"):
        body = r.render(render.SAMPLE, kind, per).body
        assert all(u[v] in body for u in per["rules"] for v in ("relevant", "not")), kind
        assert "north-korean-troops" not in r.render(render.SAMPLE, kind, urls).body, kind
    assert json.loads(r.render(render.SAMPLE, "json", per).body)["feedback"]["rules"] == per["rules"]


def test_web_config_secret_from_the_environment_and_public_url_needs_http(tmp_path, monkeypatch):
    cfg = write_config(tmp_path, feeds=[], channels={"c": ["log://"]},
                       extra='[web]\npublic_url = "https://m.example/"\nsecret = "${LINK_SECRET}"')
    monkeypatch.setenv("LINK_SECRET", "from-the-environment")
    with pytest.raises(ConfigError, match="web.public_url: .*set http.enabled = true"):
        config.load(cfg)
    cfg.write_text(cfg.read_text().replace("[http]\nenabled = false", "[http]\nenabled = true"))
    loaded = config.load(cfg)
    assert loaded.web.public_url == "https://m.example" and loaded.web.secret == "from-the-environment"
    assert "from-the-environment" in loaded.marked_secrets and loaded.inline_secrets == []
    assert loaded.link_key_file == tmp_path / "monitor.db.link-key"
    checked = run_cli("check", "--config", str(cfg), env={"LINK_SECRET": ""})
    cfg.write_text(cfg.read_text().replace('public_url = "https://m.example/"', 'public_url = "ftp://x"'))
    bad = run_cli("check", "--config", str(cfg), env={"LINK_SECRET": "x"})
    assert checked.returncode == 0, checked.stderr
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "web.public_url" in bad.stderr


# -- the store: a verdict per person and story, history kept, read per rule -----------------------
def _story(store: Store) -> None:
    """One story on which rules r and s fired, sent to two channels: alerts 1 (hook) and 2 (mail)."""
    store.sync_feeds([(FEED, "Seed feed", None)], now=NOW)
    [feed] = store.feeds()
    entry = Entry(uid="guid:k", title="Kursk", link="http://example.org/k", summary="", content="",
                  published=None, guid="k", content_hash="k")
    matches = [Match(r, f"Rule {r}", ("Kursk",), "title", "Kursk", channels=("hook", "mail")) for r in ("r", "s")]
    update = FeedUpdate(last_ok_at=NOW, last_status="ok", error_count=0, next_check_at=NOW + 900)
    store.record(feed, now=NOW, update=update, new=[(entry, None, matches)], baseline=False)


def test_a_later_verdict_of_the_same_person_replaces_theirs_and_history_stays(database):
    store = Store(database)
    _story(store)
    assert [a.id for a in store.alerts()] == [2, 1]
    first = store.give_feedback(1, "relevant", "alice", NOW + 1, "about Kursk")
    assert first is not None and (first.outcome, first.rules) == ("recorded", ("r", "s"))
    bob = store.give_feedback(2, "relevant", "bob", NOW + 2)
    again = store.give_feedback(2, "not", "alice", NOW + 3)  # the same story through the other channel
    assert bob is not None and bob.outcome == "recorded"
    assert again is not None and (again.outcome, again.earlier) == ("replaced", "relevant")
    assert store.give_feedback(99, "not", "alice", NOW) is None
    history = store.feedback(1)
    assert [(v.verdict, v.given_by, v.replaced_at, v.note) for v in history] == [
        ("relevant", "alice", NOW + 3, "about Kursk"), ("relevant", "bob", None, None), ("not", "alice", None, None)]
    assert store.feedback(2) == history  # a verdict belongs to the story
    matches = dict(db_rows(database, "SELECT rule_id, id FROM matches"))
    for rule in ("r", "s"):
        got = store.feedback_for_rule(rule)
        assert [(f.match_id, f.verdict, f.given_by, f.at) for f in got] == [
            (matches[rule], "relevant", "bob", NOW + 2), (matches[rule], "not", "alice", NOW + 3)]
    assert store.feedback_for_rule("other") == []
    assert store.feedback_counts() == {"relevant": 2, "not": 1}  # every verdict ever given
    assert store.snapshot().feedback == {"relevant": 2, "not": 1}
    token = links.token_id("1.not.2.x")
    used = store.give_feedback(1, "not", "link:hook", NOW + 4, via="link", token=token, token_expires=NOW + 9)
    replay = store.give_feedback(1, "not", "link:hook", NOW + 5, via="link", token=token, token_expires=NOW + 9)
    assert used is not None and used.outcome == "recorded"
    assert replay is not None and (replay.outcome, replay.at) == ("used", NOW + 4)
    assert store.link_used(token) == NOW + 4 and store.link_used("never") is None
    assert store.feedback_counts() == {"relevant": 2, "not": 2}
    store.close()


def test_a_verdict_on_one_rule_keeps_the_persons_verdicts_on_the_others(database):
    """A story about one topic that names the other in passing: relevant to one rule, not to the
    other. The person keeps one current row; learners read each rule's own verdict."""
    store = Store(database)
    _story(store)
    matches = dict(db_rows(database, "SELECT rule_id, id FROM matches"))
    assert store.give_feedback(1, "relevant", "alice", NOW + 1) is not None
    one = store.give_feedback(1, "not", "alice", NOW + 2, "only names r's topic", rule="s")
    assert one is not None and (one.outcome, one.rules, one.earlier) == ("replaced", ("s",), "relevant")
    assert [(f.verdict, f.given_by) for f in store.feedback_for_rule("r")] == [("relevant", "alice")]
    assert [(f.verdict, f.given_by) for f in store.feedback_for_rule("s")] == [("not", "alice")]
    assert [(j.match_id, [v for v, _ in j.verdicts]) for j in store.judged("r")] == [(matches["r"], ["relevant"])]
    assert [(j.match_id, [v for v, _ in j.verdicts]) for j in store.judged("s")] == [(matches["s"], ["not"])]
    # bob judges one rule and no other: the other rule has no verdict of his
    bob = store.give_feedback(2, "not", "bob", NOW + 3, rule="r")
    assert bob is not None and (bob.outcome, bob.rules) == ("recorded", ("r",))
    assert [f.given_by for f in store.feedback_for_rule("s")] == ["alice"]
    assert [(f.verdict, f.given_by) for f in store.feedback_for_rule("r")] == [("relevant", "alice"), ("not", "bob")]
    # a rule that did not fire on the story records nothing and names those that did
    wrong = store.give_feedback(1, "relevant", "alice", NOW + 4, rule="kursk")
    assert wrong is not None and (wrong.outcome, wrong.rules) == ("no-rule", ("r", "s"))
    # a link signed for a rule the story no longer has (renamed since): refused, the link not burnt
    renamed = store.give_feedback(1, "not", "link:hook", NOW + 4, via="link", token="t1", token_expires=NOW + 9,
                                  rule="old-name")
    assert renamed is not None and renamed.outcome == "no-rule" and store.link_used("t1") is None
    history = store.feedback(1)
    assert [(v.verdict, v.given_by, v.rules, v.kept, v.replaced_at) for v in history] == [
        ("relevant", "alice", ("r", "s"), (), NOW + 2),
        ("not", "alice", ("r", "s"), (("r", "relevant"),), None),
        ("not", "bob", ("r",), (), None)]
    assert store.feedback_counts() == {"relevant": 1, "not": 2}  # each verdict given once
    stats = store.rule_stats(0.0)
    assert (stats["r"]["relevant"], stats["r"]["not"], stats["s"]["relevant"], stats["s"]["not"]) == (1, 1, 0, 1)
    # a verdict on the whole story again covers every rule
    again = store.give_feedback(1, "relevant", "alice", NOW + 5)
    assert again is not None and again.rules == ("r", "s")
    assert [f.verdict for f in store.feedback_for_rule("s") if f.given_by == "alice"] == ["relevant"]
    assert store.feedback(1)[-1].kept == ()
    # on a story that did not alert, through one of its matches, the same
    assert store.judge_match(matches["s"], "not", "carol", NOW + 6, rule="s").rules == ("s",)
    assert [f.given_by for f in store.feedback_for_rule("r")] == ["bob", "alice"]
    store.close()


def test_a_story_a_rule_missed_is_reported_once_per_person_and_withdrawn(tmp_path, database):
    store = Store(database)
    _story(store)
    [feed] = store.feeds()
    other = Entry(uid="guid:w", title="Weather", link="http://example.org/w", summary="", content="",
                  published=None, guid="w", content_hash="w")
    update = FeedUpdate(last_ok_at=NOW, last_status="ok", error_count=0, next_check_at=NOW + 900)
    store.record(feed, now=NOW + 1, update=update, new=[(other, None, [])], baseline=False)
    (missed,) = [e for (e,) in db_rows(database, "SELECT id FROM entries WHERE uid = 'guid:w'")]
    (matched,) = [e for (e,) in db_rows(database, "SELECT id FROM entries WHERE uid = 'guid:k'")]
    assert store.report_miss(missed, "kursk", "alice", NOW + 2, "the storm hit Kursk") == "recorded"
    assert store.report_miss(missed, "kursk", "alice", NOW + 3) == "again"
    assert store.report_miss(missed, "kursk", "bob", NOW + 4, via="console") == "recorded"
    assert store.report_miss(matched, "r", "alice", NOW + 5) == "matched"  # r matched it: judge that match
    assert store.report_miss(999, "kursk", "alice", NOW) is None
    assert [(m.entry_id, m.rule_id, m.title, m.given_by, m.via, m.note, m.at) for m in store.misses("kursk")] == [
        (missed, "kursk", "Weather", "bob", "console", None, NOW + 4),
        (missed, "kursk", "Weather", "alice", "cli", None, NOW + 3)]
    assert store.misses("r") == [] and len(store.misses()) == 2
    assert store.withdraw_miss(missed, "kursk", "alice") and not store.withdraw_miss(missed, "kursk", "alice")
    assert [m.given_by for m in store.misses()] == ["bob"]
    assert store.judged("kursk") == []  # nothing for a learner: the rule's words never met it
    from monitor.metrics import Metrics
    metrics = Metrics()
    metrics.snapshot, metrics.database_up = store.snapshot(), True
    assert metrics.snapshot.misses == {"kursk": 1}  # bob's: one story, however many report it
    assert 'monitor_misses_reported{rule="kursk"} 1.0' in metrics.render()[0].decode()
    store.close()
    cfg = write_config(tmp_path, feeds=[], channels={"hook": ["json://127.0.0.1:9/x"]}, database=database)
    for args, needle in [(["--entry"], "--entry needs --rule RULE"),
                         (["--entry", "--match", "--rule", "kursk"], "--entry and --match: choose one"),
                         (["--entry", "--rule", "weather"], "--rule weather: no such rule (rules: kursk"),
                         ([], None)]:
        if needle is None:
            continue
        res = run_cli("feedback", str(missed), "relevant", *args, "--config", str(cfg), "--by", "carol")
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1 and needle in res.stderr, res.stderr
    res = run_cli("feedback", "999", "relevant", "--entry", "--rule", "kursk", "--config", str(cfg), "--by", "carol")
    assert res.returncode == 2 and "no entry with ID 999" in res.stderr, res.stderr
    res = run_cli("feedback", str(matched), "relevant", "--entry", "--rule", "north-korean-troops",
                  "--config", str(cfg), "--by", "carol")
    assert res.returncode == 0 and "north-korean-troops should have matched it, says carol (recorded)" in res.stdout
    res = run_cli("feedback", str(matched), "not", "--entry", "--rule", "north-korean-troops", "--config", str(cfg),
                  "--by", "carol")
    assert res.returncode == 0 and "withdrawn" in res.stdout, res.stdout + res.stderr
    res = run_cli("feedback", str(matched), "not", "--entry", "--rule", "north-korean-troops", "--config", str(cfg),
                  "--by", "carol")
    assert res.returncode == 2 and "carol had not reported that north-korean-troops missed it" in res.stderr


# -- the real daemon, its real endpoint, a real webhook receiver ---------------------------------
def test_links_from_the_delivered_json_record_once_and_refuse_forged_expired_replayed_unknown(
        tmp_path, feed_server, webhook, database):
    from test_end_to_end import ARTICLE, NEW, OLD

    def serve(items: list[dict]) -> str:
        return feed_server.add("/feed.xml", rss([{**it, "link": feed_server.url(it["link"])} for it in items]))

    url = serve(OLD)
    feed_server.add(NEW["link"], ARTICLE, content_type="text/html; charset=utf-8")
    for it in OLD:
        feed_server.add(it["link"], page(it["title"], [it["description"]]), content_type="text/html; charset=utf-8")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cfg = write_config(tmp_path, feeds=[url], channels={"hook": [webhook.apprise_url]},
                       extra=f'[http]\nenabled = true\nport = {port}\n[web]\npublic_url = "{base}/"',
                       database=database)
    db = database
    proc = subprocess.Popen([*monitor_cmd(), "run", "--config", str(cfg)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        _wait(lambda: db_rows(db, "SELECT baselined_at FROM feeds")[0][0] is not None, "baseline")
        serve([NEW, *OLD])
        _wait(lambda: len(webhook.received) == 1, "the alert delivered")
        [doc] = webhook.received
        # why it came, rule by rule, as the Slack and mail messages' "Why:" line says it (issue 17)
        assert [(r["id"], r["tier"]) for r in doc["rules"]] == [("kursk", "alert"), ("north-korean-troops", "alert")]
        assert [r["why"] for r in doc["rules"]] == ["title and lead; 2 of 6 sentences",
                                                    "2 of 6 sentences; parts in one sentence"]
        assert all(0.5 <= r["salience"] <= 1 and r["features"]["of"] == 6 for r in doc["rules"]), doc["rules"]
        good, other = doc["feedback"]["relevant"], doc["feedback"]["not"]
        assert good.startswith(f"{base}/feedback/{doc['id']}.relevant.") and "/feedback/" in other
        # no [web] secret: generated beside the SQLite database, or the config on PostgreSQL
        key_file = Path(f"{db}.link-key") if db.endswith(".db") else tmp_path / "monitor.link-key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        key = key_file.read_text().strip().encode()
        count = lambda: db_rows(db, "SELECT COUNT(*) FROM feedback")[0][0]  # noqa: E731

        status, body = _http(good)  # what a link previewer does: shows, records nothing
        assert status == 200 and '<form method="post">' in body and "Record: relevant" in body, body
        assert "<script" not in body and "Gefechte im Gebiet Kursk" in body and count() == 0
        status, body = _http(good, post=True)
        assert status == 200 and "Recorded: alert 1 is relevant" in body, body
        assert db_rows(db, "SELECT verdict, given_by, via, alert_id FROM feedback") == [
            ("relevant", "link:hook", "link", 1)]
        assert sorted(db_rows(db, "SELECT rule_id FROM feedback_rules")) == [("kursk",), ("north-korean-troops",)]

        status, body = _http(good, post=True)  # replayed
        assert status == 409 and "already used" in body and count() == 1, body
        assert _http(good)[0] == 409
        token = good.rsplit("/", 1)[1]
        forged = token[:-1] + ("A" if token[-1] != "A" else "B")
        status, body = _http(f"{base}/feedback/{forged}", post=True)
        assert status == 403 and "signature does not match" in body and count() == 1, body
        expired = links.mint(key, 1, "not", time.time() - 60)
        status, body = _http(f"{base}/feedback/{expired}", post=True)
        assert status == 410 and "expired on" in body and count() == 1, body
        unknown = links.mint(key, 999, "not", time.time() + 600)
        assert _http(f"{base}/feedback/{unknown}")[0] == 404
        status, body = _http(f"{base}/feedback/{unknown}", post=True)
        assert status == 404 and "no alert 999" in body and count() == 1, body
        assert db_rows(db, "SELECT COUNT(*) FROM feedback_links") == [(1,)]  # refused links burn nothing

        status, body = _http(other, post=True)  # the message's other link: the same "person" changes their mind
        assert status == 200 and "not relevant" in body, body
        # the page says what the verdict does now, and for each rule's learning
        assert ("Other sources of this story are no longer sent for kursk, north-korean-troops, unless someone "
                "judges it relevant." in body), body
        assert "kursk has 1 judged match (0 relevant, 1 not); it learns from them once it has 10 with 3" in body
        _wait(lambda: 'monitor_feedback_total{verdict="relevant"} 1.0' in _http(f"{base}/metrics")[1]
              and 'monitor_feedback_total{verdict="not"} 1.0' in _http(f"{base}/metrics")[1], "feedback counted")
        # the story fired two rules: the message has a pair of links for each; one judges that rule only
        assert [r["rule"] for r in doc["feedback"]["rules"]] == ["kursk", "north-korean-troops"]
        nk = doc["feedback"]["rules"][1]["relevant"]
        status, body = _http(nk)
        assert status == 200 and "Record: relevant for north-korean-troops" in body and "other rules: kursk" in body
        status, body = _http(nk, post=True)
        assert status == 200 and "Recorded: alert 1 is relevant for north-korean-troops only." in body, body
        assert sorted(db_rows(db, "SELECT r.rule_id, COALESCE(r.verdict, f.verdict) FROM feedback_rules r JOIN "
                                  "feedback f ON f.id = r.feedback_id WHERE f.replaced_at IS NULL")) == [
            ("kursk", "not"), ("north-korean-troops", "relevant")]
        assert _http(nk, post=True)[0] == 409

        by_cli = run_cli("feedback", "1", "not", "--note", "background mention", "--by", "alice",
                         "--config", str(cfg))
        assert by_cli.returncode == 0, by_cli.stderr
        assert by_cli.stdout.splitlines() == [  # what it recorded, what it does now, what it does for learning
            "alert 1: not by alice recorded (rules: kursk, north-korean-troops)",
            "  Other sources of this story are no longer sent for kursk, north-korean-troops, unless someone "
            "judges it relevant.",
            "  kursk has 1 judged match (0 relevant, 1 not); it learns from them once it has 10 with 3 of each",
            # the link's "relevant" and alice's "not" tie: the latest decides, as the learner decides
            "  north-korean-troops has 1 judged match (0 relevant, 1 not); it learns from them once it has 10 "
            "with 3 of each"], by_cli.stdout
        changed = run_cli("feedback", "1", "relevant", "--by", "alice", "--config", str(cfg))
        assert "replaced your 'not'" in changed.stdout, changed.stdout + changed.stderr
        _wait(lambda: 'monitor_feedback_total{verdict="not"} 2.0' in _http(f"{base}/metrics")[1], "CLI counted")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert token not in err  # the endpoint logs no URL: the token is a credential
    assert "feedback link refused reason=forged" in err and "reason=replayed" in err

    shown = run_cli("alerts", "show", "1", "--config", str(cfg))
    lines = shown.stdout.splitlines()
    head = f"{'feedback:':14} 2 verdicts"  # the two current ones
    assert head in lines, shown.stdout
    verdicts = [line.split() for line in lines[lines.index(head) + 1:]]
    assert [(v[2], v[4]) for v in verdicts] == [("relevant", "link:hook"), ("not", "link:hook"),
                                                ("relevant", "link:hook"), ("not", "alice"),
                                                ("relevant", "alice")], shown.stdout
    assert "replaced" in lines[-5] and "replaced" in lines[-4] and "replaced" in lines[-2]
    assert "note: background mention" in lines[-2] and "replaced" not in lines[-1] and "replaced" not in lines[-3]
    assert "on kursk (not, kept), north-korean-troops" in lines[-3], shown.stdout
    as_json = json.loads(run_cli("alerts", "show", "1", "--json", "--config", str(cfg)).stdout)
    assert [(f["verdict"], f["given_by"], f["note"]) for f in as_json["feedback"]][3] == (
        "not", "alice", "background mention")


def test_feedback_cli_bad_input_is_one_line_and_exit_2(tmp_path, database):
    cfg = write_config(tmp_path, feeds=[], channels={"hook": ["json://127.0.0.1:9/x"]}, database=database)
    store = Store(database)
    _story(store)
    store.close()
    for args, needle in [(["1", "maybe"], "verdict must be 'relevant' or 'not', got 'maybe'"),
                         (["x1", "not"], "alert ID must be a number"),
                         (["99", "not"], "no alert with ID 99"),
                         (["1", "not", "--by", " "], "--by: expected a name")]:
        res = run_cli("feedback", *args, "--config", str(cfg))
        assert res.returncode == 2 and res.stderr.startswith("error: "), res.stderr
        assert len(res.stderr.strip().splitlines()) == 1 and needle in res.stderr, res.stderr
    ok = run_cli("feedback", "2", "not", "--config", str(cfg), env={"USER": "carol", "LOGNAME": "carol"})
    assert ok.returncode == 0 and "by carol recorded" in ok.stdout, ok.stdout + ok.stderr
    assert db_rows(database, "SELECT given_by, via FROM feedback") == [("carol", "cli")]
    # --rule: one rule of the story; a rule that did not fire there is one line naming those that did
    for args, needle in [(["1", "not", "--rule", "kursk"], "--rule kursk: that rule did not fire on alert 1's "
                                                           "story (its rules: r, s)"),
                         (["1", "not", "--rule", " "], "--rule: expected a rule ID")]:
        res = run_cli("feedback", *args, "--config", str(cfg), "--by", "carol")
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1 and needle in res.stderr, res.stderr
    one = run_cli("feedback", "1", "relevant", "--rule", "r", "--config", str(cfg), "--by", "carol")
    assert one.returncode == 0 and "replaced your 'not' (rules: r)" in one.stdout, one.stdout + one.stderr
    shown = run_cli("alerts", "show", "1", "--config", str(cfg))
    assert shown.returncode == 0, shown.stderr
    lines = [line for line in shown.stdout.splitlines() if "by carol" in line]
    assert len(lines) == 2 and "on r" not in lines[0] and "on r, s (not, kept)" in lines[1], shown.stdout
    assert db_rows(database, "SELECT rule_id, verdict FROM feedback_rules WHERE feedback_id = "
                             "(SELECT MAX(id) FROM feedback) ORDER BY rule_id") == [("r", None), ("s", "not")]
