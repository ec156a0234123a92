"""The real CLI in a subprocess: user errors exit 2 with one line per problem naming the file
and the key or line, never a traceback; parse/extract/match print the promised JSON lines."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import LOOPBACK, RULES, page, rss, run_cli, write_config

CHANNELS = {"console": ["log://"]}


def _assert_user_error(res, *needles: str) -> None:
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    for n in needles:
        assert n in res.stderr, res.stderr
    assert all(line.startswith("error: ") for line in res.stderr.strip().splitlines())


@pytest.mark.parametrize("extra,needles", [
    ("[fetch]\ntimout = 3", ["fetch.timout: unknown key", "expected one of: connect_timeout"]),
    ("[poll]\ninterval = -5", ["poll.interval: Input should be greater than 0"]),
    ("[surprise]\nx = 1", ["surprise: unknown key"]),
    ("[monitor]\nlog_level = 'LOUD'", ["monitor.log_level"]),
])
def test_bad_config_keys(tmp_path, extra, needles):
    cfg = tmp_path / "config.toml"
    cfg.write_text(extra + "\n", encoding="utf-8")
    for cmd in ("check", "once", "run"):
        _assert_user_error(run_cli(cmd, "--config", str(cfg)), str(cfg), *needles)


def test_missing_and_unparsable_config(tmp_path):
    _assert_user_error(run_cli("check", "--config", str(tmp_path / "nope.toml")), "no such config file")
    bad = tmp_path / "bad.toml"
    bad.write_text("[monitor\n", encoding="utf-8")
    _assert_user_error(run_cli("check", "--config", str(bad)), "not valid TOML", "line 1")


def test_bad_channel_url_and_missing_secret(tmp_path):
    cfg = write_config(tmp_path, feeds=[], channels={"team": ["nonsense://x"]})
    _assert_user_error(run_cli("check", "--config", str(cfg)), "channels.team.urls[0]",
                       "apprise cannot use this nonsense:// URL")
    cfg = write_config(tmp_path, feeds=[], channels={"team": ["json://${HOOK_HOST_FOR_TEST}/x"]})
    _assert_user_error(run_cli("check", "--config", str(cfg)), "HOOK_HOST_FOR_TEST is not set")
    ok = run_cli("check", "--config", str(cfg), env={"HOOK_HOST_FOR_TEST": "127.0.0.1:9"})
    assert ok.returncode == 0, ok.stderr


def test_unknown_default_channel(tmp_path):
    cfg = write_config(tmp_path, feeds=[], channels=CHANNELS, defaults=["pager"])
    _assert_user_error(run_cli("check", "--config", str(cfg)),
                       "notify.default_channels: no channel named 'pager'")


def test_broken_rule_file_is_named_with_its_line(tmp_path, rules_copy):
    (rules_copy / "broken.yaml").write_text("id: broken\ntitle: B\nany: [ok\n", encoding="utf-8")
    (rules_copy / "chan.yaml").write_text("id: chan\ntitle: C\nany: [x]\nchannels: [pager]\n",
                                          encoding="utf-8")
    cfg = write_config(tmp_path, feeds=[], channels=CHANNELS, rules=rules_copy)
    res = run_cli("check", "--config", str(cfg))
    _assert_user_error(res, f"{rules_copy / 'broken.yaml'}:4: not valid YAML",
                       f"{rules_copy / 'chan.yaml'}:1: rule 'chan': channel 'pager'")
    _assert_user_error(run_cli("once", "--config", str(cfg)), "broken.yaml:4")


def test_rule_with_nowhere_to_alert_is_refused(tmp_path):
    cfg = write_config(tmp_path, feeds=[], channels=CHANNELS, defaults=[])
    _assert_user_error(run_cli("check", "--config", str(cfg)),
                       "rule 'kursk' names no channels and notify.default_channels is empty")


def test_check_ok_summary(tmp_path):
    cfg = write_config(tmp_path, feeds=["http://127.0.0.1:9/f.xml"], channels=CHANNELS)
    res = run_cli("check", "--config", str(cfg))
    assert res.returncode == 0, res.stderr
    assert "1 feeds, 1 channels" in res.stdout and "2 rules" in res.stdout


def test_example_config_checks_clean():
    root = Path(__file__).resolve().parent.parent
    res = run_cli("check", "--config", str(root / "config.example.toml"))
    assert res.returncode == 0, res.stderr


def test_parse_json_lines(tmp_path, feed_server):
    good = tmp_path / "feed.xml"
    good.write_text(rss([{"title": "Erste &amp; Zweite", "link": "http://example.org/a?utm_source=x#top",
                          "description": "<p>Hallo <b>Welt</b></p>"}]), encoding="utf-8")
    html = tmp_path / "page.html"
    html.write_text(page("Keine Feed-Datei", ["Nur eine Seite."]), encoding="utf-8")
    url = feed_server.add("/f.xml", good.read_bytes())
    res = run_cli("parse", str(good), str(html), url, str(tmp_path / "missing.xml"), "--json", *LOOPBACK)
    assert res.returncode == 2, res.stderr  # two inputs failed (test_cli_input.py)
    lines = [json.loads(x) for x in res.stdout.splitlines()]
    assert len(lines) == 4
    first = lines[0]
    assert first["source"] == str(good) and first["title"] == "Test feed"
    [e] = first["entries"]
    assert set(e) == {"id", "title", "link", "published", "summary"}
    assert e["title"] == "Erste & Zweite" and e["link"] == "http://example.org/a"
    assert e["summary"] == "Hallo Welt" and e["published"] == "2026-11-01T08:00:00Z"
    assert set(lines[1]) == {"source", "error"} and "not a feed" in lines[1]["error"]
    assert lines[2]["entries"] == first["entries"]
    assert "cannot read" in lines[3]["error"]


def test_extract_json_lines(tmp_path, feed_server):
    paras = ["Erster Absatz über die Lage in der Grenzregion, mit genügend Text für den Extraktor.",
             "Zweiter Absatz mit weiteren Einzelheiten zu den Ereignissen der vergangenen Woche."]
    p = tmp_path / "a.html"
    p.write_text(page("Bericht aus der Region", paras), encoding="utf-8")
    url = feed_server.add("/p.html", p.read_bytes(), content_type="text/html")
    empty = tmp_path / "empty.html"
    empty.write_text("<html><body></body></html>", encoding="utf-8")
    res = run_cli("extract", str(p), url, str(empty), "--json", "--url", "http://example.org/a", *LOOPBACK)
    assert res.returncode == 2, res.stderr  # the empty page failed (test_cli_input.py)
    out = [json.loads(x) for x in res.stdout.splitlines()]
    assert [o["source"] for o in out] == [str(p), url, str(empty)]
    for o in out[:2]:
        assert set(o) == {"source", "title", "text", "language", "author", "date"}
        assert paras[0] in o["text"] and paras[1] in o["text"]
        assert "Impressum" not in o["text"] and o["language"] == "de"
        assert o["author"] == "Test Autorin"
    assert set(out[2]) == {"source", "error"}


def test_extract_url_follows_the_daemons_path(feed_server):
    pdf = feed_server.add("/doc.pdf", b"%PDF-1.4 binary", content_type="application/pdf")
    missing = feed_server.url("/gone.html")
    res = run_cli("extract", pdf, missing, "--json", *LOOPBACK)
    assert res.returncode == 2, res.stderr
    out = [json.loads(x) for x in res.stdout.splitlines()]
    assert out == [{"source": pdf, "error": "not HTML (application/pdf)"},
                   {"source": missing, "error": "http-404: HTTP 404 Not Found"}]


def test_match_reads_stdin_and_file(tmp_path):
    items = [{"id": "1", "title": "Lage in Kursk", "text": "Nichts weiter."},
             {"id": "2", "title": "Kurskorrektur", "text": "Der Wechselkurs sinkt."}]
    data = "\n".join(json.dumps(i) for i in items) + "\nnot json\n"
    res = run_cli("match", "--rules", str(RULES), input=data)
    assert res.returncode == 0, res.stderr
    out = [json.loads(x) for x in res.stdout.splitlines()]
    assert out[0]["id"] == "1" and out[0]["matches"][0]["rule"] == "kursk"
    assert out[0]["matches"][0]["terms"] == ["Kursk"]
    assert out[0]["matches"][0]["snippet"] == "Lage in **Kursk**"
    assert out[1] == {"id": "2", "matches": []}
    assert out[2]["error"].startswith("line 3:")
    f = tmp_path / "in.jsonl"
    f.write_text(data, encoding="utf-8")
    assert run_cli("match", "--rules", str(RULES), str(f)).stdout == res.stdout
    _assert_user_error(run_cli("match", "--rules", str(tmp_path / "none"), input=""),
                       "rules folder does not exist")


def test_every_command_has_help():
    top = run_cli("--help")
    assert top.returncode == 0
    for cmd in ("run", "once", "check", "parse", "extract", "match", "feeds", "alerts", "notify-test"):
        assert cmd in top.stdout
        res = run_cli(cmd, "--help")
        assert res.returncode == 0 and "Usage:" in res.stdout, cmd


def test_usage_errors_exit_2():
    res = run_cli("parse")
    assert res.returncode == 2 and "Traceback" not in res.stderr


def _stored(tmp_path: Path) -> None:
    """A database the daemon's own Store wrote: three articles from the last days in two feeds
    (one tagged osint), one from a month ago, and a "Kurskorrektur" that no rule may take."""
    import time

    from monitor.models import Article, Entry, FeedUpdate
    from monitor.store import Store

    now, day = time.time(), 86400.0
    store = Store(tmp_path / "monitor.db")
    try:
        store.sync_feeds([("https://osint.example/feed.xml", "OSINT", None, ("osint",)),
                          ("https://news.example/rss", "News", None, ())], now)
        feeds = {f.url: f for f in store.feeds()}

        def item(uid: str, title: str, text: str, lang: str) -> tuple:
            link = f"https://example.org/{uid}"
            entry = Entry(uid=uid, title=title, link=link, summary="", content="", published=None)
            return entry, Article(title=title, text=text, url=link, language=lang, source="page"), ()

        for url, age, items in [
            ("https://osint.example/feed.xml", 2 * day, [
                item("a1", "Gefechte im Gebiet Kursk", "Im Kursker Gebiet wird weiter gekämpft.", "de"),
                item("a2", "Haushalt", "Die Regierung plant eine Kurskorrektur.", "de")]),
            ("https://news.example/rss", 1 * day, [
                item("b1", "Бои в Курской области", "Ситуация в Курской области остаётся сложной.", "ru")]),
            ("https://osint.example/feed.xml", 30 * day, [
                item("a0", "Kursk, a month ago", "Fighting near Kursk.", "en")]),
        ]:
            store.record(feeds[url], now=now - age, update=FeedUpdate(), new=items, baseline=False)
    finally:
        store.close()


def test_rules_test_lists_the_near_misses_its_context_or_an_exclusion_kept_out(tmp_path, rules_copy):
    """'Find what it missed': stories that name a rule's topic (North Korean soldiers) but that its
    context clause (the war) or its exclusion (drills) kept out are listed, each with what kept it
    out; a rule with neither (kursk) has none to list."""
    import time

    from monitor.models import Article, Entry, FeedUpdate
    from monitor.store import Store

    (rules_copy / "nk.yaml").write_text(
        "id: nk-front\ntitle: North Korean troops at the front\nany: ['@north_korea']\n"
        "all: ['@war_context']\nnone: [Manöver]\n", encoding="utf-8")
    store = Store(tmp_path / "monitor.db")
    try:
        store.sync_feeds([("https://news.example/rss", "News", None, ())], time.time())
        [feed] = store.feeds()
        stories = [("n1", "Nordkoreanische Soldaten an der Front",
                    "Nordkoreanische Soldaten kämpfen an der Seite Russlands gegen die Ukraine."),
                   ("n2", "Übung nahe Pjöngjang", "Nordkoreanische Soldaten übten am Montag nahe Pjöngjang."),
                   ("n3", "Gemeinsames Manöver", "Nordkoreanische und russische Soldaten begannen ein Manöver."),
                   ("n4", "Wetter", "Am Wochenende bleibt es sonnig.")]
        store.record(feed, now=time.time() - 3600, update=FeedUpdate(), baseline=False, new=[
            (Entry(uid=uid, title=title, link=f"https://example.org/{uid}", summary="", content="", published=None),
             Article(title=title, text=text, url=f"https://example.org/{uid}", language="de", source="page"), ())
            for uid, title, text in stories])
    finally:
        store.close()
    cfg = write_config(tmp_path, feeds=[], channels=CHANNELS, rules=rules_copy)
    res = run_cli("rules", "test", "nk-front", "--config", str(cfg))
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "#1 Nordkoreanische Soldaten an der Front" in out.split("near misses:")[0]
    missed = out.split("near misses: 2 articles name the topic", 1)[1]
    assert re.search(r"#2 Übung .*\n.*\n    the topic's terms: [^\n]*; kept out by its context \(all:\)", missed), out
    assert re.search(r"#3 Gemeinsames .*\n.*\n    the topic's terms: [^\n]*; kept out by an exclusion \(none:\)",
                     missed), out
    assert "Wetter" not in out
    assert "would have fired on 1 of 4 articles stored in the last 14d" in out and "; near misses: 2" in out
    as_json = run_cli("rules", "test", "nk-front", "--config", str(cfg), "--json")
    assert [json.loads(x)["entry"] for x in as_json.stdout.splitlines()] == [1]  # one object per article that fires
    assert "; near misses: 2" in as_json.stderr
    kursk = run_cli("rules", "test", "kursk", "--config", str(cfg))  # its exclusion (the submarine) kept none out
    assert kursk.returncode == 0 and "; near misses: 0" in kursk.stdout
    assert "articles name the topic" not in kursk.stdout
    (rules_copy / "plain.yaml").write_text("id: plain\ntitle: Plain\nany: [Soldaten]\n", encoding="utf-8")
    plain = run_cli("rules", "test", "plain", "--config", str(cfg))  # neither context nor exclusion: nothing to say
    assert "would have fired on 3 of 4" in plain.stdout and "near misses" not in plain.stdout, plain.stdout


def test_rules_test_backtests_a_rule_on_stored_articles(tmp_path, rules_copy):
    (rules_copy / "osint.yaml").write_text("id: osint-kursk\ntitle: Kursk (OSINT)\ntags: [osint]\n"
                                           "any: ['@kursk']\n", encoding="utf-8")
    cfg = write_config(tmp_path, feeds=[], channels=CHANNELS, rules=rules_copy)
    _stored(tmp_path)

    res = run_cli("rules", "test", "kursk", "--config", str(cfg), "--since", "14d")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    at = next(i for i, x in enumerate(lines) if x.startswith("rule kursk:"))  # then tiers, feedback
    listed, summary = "\n".join(lines[:at]), lines[at]
    assert listed.splitlines() == [
        "#1 Gefechte im Gebiet Kursk", "    https://example.org/a1",
        "    terms: Kursk (field body, score 3)", "    Im **Kursker** Gebiet wird weiter gekämpft.",
        "#3 Бои в Курской области", "    https://example.org/b1",
        "    terms: Курск (field body, score 3)", "    Ситуация в **Курской** области остаётся сложной."]
    assert summary.startswith("rule kursk: would have fired on 2 of 3 articles stored in the last 14d (")

    res = run_cli("rules", "test", "osint-kursk", "--config", str(cfg), "--since", "60d", "--json")
    assert res.returncode == 0, res.stderr
    out = [json.loads(x) for x in res.stdout.splitlines()]
    assert [(o["entry"], o["feed"], o["terms"]) for o in out] == [
        (1, "https://osint.example/feed.xml", ["Kursk"]),
        (4, "https://osint.example/feed.xml", ["Kursk"])]  # the ru article's feed has no osint tag
    assert set(out[0]) == {"entry", "title", "url", "feed", "terms", "field", "score", "snippet"}
    assert (out[1]["title"], out[1]["url"], out[1]["field"], out[1]["score"], out[1]["snippet"]) == (
        "Kursk, a month ago", "https://example.org/a0", "body", 3, "Fighting near **Kursk**.")
    assert "would have fired on 2 of 4 articles stored in the last 60d" in res.stderr

    _assert_user_error(run_cli("rules", "test", "nope", "--config", str(cfg)), "no rule 'nope'")
    _assert_user_error(run_cli("rules", "test", "kursk", "--config", str(cfg), "--since", "two weeks"),
                       "--since 'two weeks'")


def test_rules_check_prints_each_problem_once(tmp_path):
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / "a.yaml").write_text("id: a\ntitle: A\nany: ['/[Kursk/']\n", encoding="utf-8")
    (folder / "b.yaml").write_text("id: b\ntitle: B\nany: [Kursk]\ncolour: red\n", encoding="utf-8")
    res = run_cli("rules", "check", "--rules", str(folder))
    assert res.returncode == 2
    assert res.stderr.splitlines() == [
        f"error: {folder / 'a.yaml'}:3: regex /[Kursk/ is not valid RE2 (linear-time: no backreferences or "
        "lookarounds): missing ]: [Kursk",
        f"error: {folder / 'b.yaml'}:4: unknown key 'colour' (expected one of: id, title, description, severity, "
        "channels, fields, min_hits, title_weight, alert_at, digest_at, about, feeds, skip_feeds, tags, languages, "
        "max_age, match, within, any, all, none, near, same_sentence)"]
    ok = run_cli("rules", "check", "--rules", str(RULES))
    assert ok.returncode == 0 and ok.stdout.strip() == f"{RULES}: 2 rules OK" and ok.stderr == ""


def test_rules_check_warns_of_a_near_that_asks_for_many_words_at_once(tmp_path):
    """Valid, but likely not meant: every item of a near must be found, so "the topic near DMZ,
    defector, …" written flat asks for all of them together (a shipped exclusion was such and
    never held). A warning with the list that says "any", and exit 0; a near of concepts is meant."""
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / "nk.yaml").write_text(
        "concepts:\n  nk: [North Korea]\n  war: [Russia, Ukraine]\n  troops: [soldiers, troops]\n"
        "rules:\n  - id: nk\n    title: NK\n    all: ['@nk', '@war']\n    none:\n"
        "      - near: ['@nk', DMZ, demilitarised zone, defector, Überläufer]\n        within: 1000\n"
        "  - id: fine\n    title: Fine\n    same_sentence: ['@nk', '@troops', '@war', Kursk]\n", encoding="utf-8")
    res = run_cli("rules", "check", "--rules", str(folder))
    assert res.returncode == 0 and res.stdout.strip() == f"{folder}: 2 rules OK", res.stdout + res.stderr
    assert res.stderr.splitlines() == [
        f"warning: {folder / 'nk.yaml'}:10: rule 'nk': near needs all 5 of its items found together (DMZ, "
        "demilitarised zone, defector, …); for @nk near any one of these words, put the words in a list of "
        "their own: near: [\"@nk\", [DMZ, demilitarised zone, …]]"]
    cfg = write_config(tmp_path, feeds=[], channels=CHANNELS, rules=folder)
    checked = run_cli("check", "--config", str(cfg))  # the config's check says it too
    assert checked.returncode == 0 and checked.stderr.splitlines() == [f"warning: {res.stderr[9:].strip()}"]


def test_a_bad_digest_cron_is_named_by_check_and_refused_by_run(tmp_path):
    """The digest crons are APScheduler's to parse (daemon.jobs.check_digests): `monitor check` and
    `monitor run` name the channel and exit 2, without a traceback."""
    cfg = write_config(tmp_path, feeds=[], channels={"mail": ["log://"]})
    cfg.write_text(cfg.read_text().replace('[channels.mail]\nurls = ["log://"]',
                                           '[channels.mail]\nurls = ["log://"]\ndigest = "every morning"'))
    for command in ("check", "run"):
        res = run_cli(command, "--config", str(cfg))
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        assert "channels.mail.digest:" in res.stderr and "every morning" in res.stderr, res.stderr
