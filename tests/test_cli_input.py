"""Commands that do what they say (issue 14), through the real CLI in a subprocess: a missing
config says how to start; the rule commands find the rules folder the way every command finds
the config; parse and extract name each failed input and exit 2 after the whole batch; a
refusal of a private address names the fix of the command that refused; a dry run of
notify-test sends nothing on any kind of channel."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import LOOPBACK, RULES, monitor_cmd, page, rss, run_cli, write_config

CHANNELS = {"console": ["log://"]}


def _errors(res) -> list[str]:
    """The stderr lines of a user error: exit 2, no traceback, every line 'error: ...'."""
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert lines and all(x.startswith("error: ") for x in lines), res.stderr
    return lines


# --- no config file: how to start ------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["check"], ["once"], ["run"], ["prune"], ["feeds"], ["alerts"], ["status"], ["notify-test", "team"],
    ["rules", "check"], ["rules", "test", "kursk"], ["match"],
])
def test_no_config_file_says_how_to_start(tmp_path, args):
    env = {k: v for k, v in os.environ.items() if k != "MONITOR_CONFIG"}
    res = subprocess.run([*monitor_cmd(), *args], input="", capture_output=True, text=True, timeout=60,
                         cwd=tmp_path, env=env)
    assert _errors(res) == [
        "error: config.toml: no such config file",
        "error: to start: cp config.example.toml config.toml, or name another with --config FILE or MONITOR_CONFIG"]
    assert list(tmp_path.iterdir()) == []  # nothing created on the way out


# --- the rules folder comes from the config, --rules overrides it -------------------------

def _broken_rules(tmp_path: Path, rules_copy: Path) -> Path:
    (rules_copy / "broken.yaml").write_text("id: broken\ntitle: B\nany: [ok\n", encoding="utf-8")
    (rules_copy / "chan.yaml").write_text("id: chan\ntitle: C\nany: [x]\nchannels: [pager]\n", encoding="utf-8")
    return write_config(tmp_path, feeds=[], channels=CHANNELS, rules=rules_copy)


def test_rules_check_reads_the_folder_from_the_config_like_monitor_check(tmp_path, rules_copy):
    cfg = _broken_rules(tmp_path, rules_copy)
    expected = [f"error: {rules_copy / 'broken.yaml'}:4: not valid YAML",
                f"error: {rules_copy / 'chan.yaml'}:1: rule 'chan': channel 'pager' is not in the config"]
    for res in (run_cli("rules", "check", "--config", str(cfg)),
                run_cli("rules", "check", env={"MONITOR_CONFIG": str(cfg)})):
        lines = _errors(res)
        assert len(lines) == 2 and all(x.startswith(e) for x, e in zip(lines, expected, strict=True)), lines
    # the same lines, with the same prefix, as 'monitor check' prints for this config
    assert set(_errors(run_cli("check", "--config", str(cfg)))) == set(lines)


def test_rules_check_and_match_take_rules_as_an_override(tmp_path, rules_copy):
    cfg = _broken_rules(tmp_path, rules_copy)
    ok = run_cli("rules", "check", "--config", str(cfg), "--rules", str(RULES))
    assert ok.returncode == 0 and ok.stdout.strip() == f"{RULES}: 2 rules OK", ok.stderr
    assert "broken.yaml:4" in _errors(run_cli("match", "--config", str(cfg), input=""))[0]
    line = json.dumps({"id": "1", "title": "Lage in Kursk", "text": "Nichts weiter."}) + "\n"
    (tmp_path / "good").mkdir()
    good = write_config(tmp_path / "good", feeds=[], channels=CHANNELS)  # the shipped rules
    for res in (run_cli("match", "--config", str(good), input=line),
                run_cli("match", "--config", str(cfg), "--rules", str(RULES), input=line),
                run_cli("match", input=line, env={"MONITOR_CONFIG": str(good)})):
        assert res.returncode == 0, res.stderr
        assert [m["rule"] for m in json.loads(res.stdout)["matches"]] == ["kursk"]


# --- parse and extract: every failed input named, the batch goes on, exit 2 ------------------

def test_parse_names_each_failed_input_goes_on_and_exits_2(tmp_path, feed_server):
    good = tmp_path / "feed.xml"
    good.write_text(rss([{"title": "Lage in Kursk", "link": "http://example.org/a"}]), encoding="utf-8")
    html = tmp_path / "page.html"
    html.write_text(page("Keine Feed-Datei", ["Nur eine Seite."]), encoding="utf-8")
    missing = str(tmp_path / "missing.xml")
    url = feed_server.add("/f.xml", good.read_bytes())
    advert = '<link rel="alternate" type="application/rss+xml" href="/f.xml"></head>'
    html_url = feed_server.add("/page.html", html.read_text("utf-8").replace("</head>", advert),
                               content_type="text/html")
    gone = feed_server.url("/gone.xml")
    sources = [str(good), missing, gone, html_url, str(html), url]
    res = run_cli("parse", *sources, "--json", *LOOPBACK)
    errors = _errors(res)
    out = [json.loads(x) for x in res.stdout.splitlines()]
    assert [o["source"] for o in out] == sources  # the batch went on past each failure
    assert [o.get("error") for o in out] == [
        None, "cannot read: No such file or directory", "http-404: HTTP 404 Not Found",
        f"not a feed but an HTML page; it names the feed {url}", "not a feed but an HTML page (which names no feed)",
        None]
    assert errors == [f"error: {o['source']}: {o['error']}" for o in out if "error" in o]
    assert out[-1]["entries"] == out[0]["entries"] != []

    one = run_cli("parse", missing)  # without --json: the one line names the file, nothing on stdout
    assert _errors(one) == [f"error: {missing}: cannot read: No such file or directory"] and one.stdout == ""


def test_extract_names_each_failed_page_goes_on_and_exits_2(tmp_path, feed_server):
    paras = ["Erster Absatz über die Lage in der Grenzregion, mit genügend Text für den Extraktor.",
             "Zweiter Absatz mit weiteren Einzelheiten zu den Ereignissen der vergangenen Woche."]
    good = feed_server.add("/p.html", page("Bericht aus der Region", paras), content_type="text/html")
    pdf = feed_server.add("/doc.pdf", b"%PDF-1.4 binary", content_type="application/pdf")
    gone = feed_server.url("/gone.html")
    missing = str(tmp_path / "missing.html")
    sources = [missing, gone, good, pdf]
    res = run_cli("extract", *sources, "--json", *LOOPBACK)
    errors = _errors(res)
    out = [json.loads(x) for x in res.stdout.splitlines()]
    assert [(o["source"], o.get("error")) for o in out] == [
        (missing, "cannot read: No such file or directory"), (gone, "http-404: HTTP 404 Not Found"),
        (good, None), (pdf, "not HTML (application/pdf)")]
    assert paras[0] in out[2]["text"]
    assert errors == [f"error: {o['source']}: {o['error']}" for o in out if "error" in o]


# --- a refusal names the fix of the command that refused ------------------------------------

@pytest.mark.parametrize("cmd", ["parse", "extract"])
def test_parse_and_extract_refusing_a_loopback_address_name_their_flag(feed_server, cmd):
    url = feed_server.add("/x", rss([]))
    [line] = _errors(run_cli(cmd, url))
    assert line == (f"error: {url}: blocked-address: refused: 127.0.0.1 is a loopback address; "
                    f"to allow it, rerun with --allow-private 127.0.0.1:{feed_server.port}")  # that port only
    assert feed_server.log == []  # nothing was fetched
    again = run_cli(cmd, url, "--allow-private", f"127.0.0.1:{feed_server.port}", "--json")  # the fix works
    assert "blocked-address" not in again.stdout + again.stderr
    assert [p for p, _ in feed_server.log] == ["/x"]


def _config_without_allow_list(tmp_path: Path, feeds: list[str]) -> Path:
    cfg = write_config(tmp_path, feeds=feeds, channels=CHANNELS)
    text = cfg.read_text("utf-8")
    cfg.write_text("\n".join(x for x in text.splitlines() if not x.startswith("allow_private")) + "\n")
    return cfg


def test_daemon_and_config_commands_refusing_name_the_config_key(tmp_path, feed_server):
    from conftest import db_rows

    url = feed_server.add("/f.xml", rss([]))
    cfg = _config_without_allow_list(tmp_path, [url])
    fix = f'to allow it, add "127.0.0.1:{feed_server.port}" to [fetch] allow_private'
    assert run_cli("once", "--config", str(cfg)).returncode == 0
    [(error,)] = db_rows(tmp_path / "monitor.db", "SELECT last_error FROM feeds")
    assert error.endswith(f"refused: 127.0.0.1 is a loopback address; {fix}") and "--allow-private" not in error
    [line] = _errors(run_cli("feeds", "add", feed_server.url("/other.xml"), "--config", str(cfg)))
    assert fix in line and "--allow-private" not in line
    assert feed_server.log == []


# --- notify-test --dry-run sends nothing, on any kind of channel ---------------------------

def test_notify_test_dry_run_sends_nothing_on_email_webhook_or_log_and_shows_the_message(tmp_path, smtp, webhook):
    smtp.start()
    cfg = write_config(tmp_path, feeds=[], channels={"team": [smtp.apprise_url, webhook.apprise_url, "log://"]})
    dry = run_cli("notify-test", "team", "--dry-run", "--config", str(cfg))
    assert dry.returncode == 0, dry.stderr
    assert smtp.messages == []  # SMTP is not HTTP: the dry run never hands it to apprise
    assert (webhook.received, webhook.refused) == ([], 0)
    assert "ALERT" not in dry.stderr  # nor our own log:// channel
    out = dry.stdout.splitlines()
    mail = next(i for i, x in enumerate(out) if x.startswith("mailto://"))
    assert out[mail].endswith(": would send (dry run: not handed to apprise)")
    assert f"127.0.0.1:{smtp.port}" in out[mail] and "analysts%40example.org" in out[mail]
    assert out[mail + 1] == "title: rss-monitor test alert"
    assert out[mail + 2].startswith("body: A test message from 'monitor notify-test team'")
    hook = next(i for i, x in enumerate(out) if x.startswith(f"json://127.0.0.1:{webhook.port}/hook"))
    assert out[hook].endswith(": would send 1 HTTP request(s)")
    assert out[hook + 1] == f"POST 127.0.0.1:{webhook.port} (path hidden: it may hold a secret)"
    assert json.loads(out[hook + 2])["title"] == "rss-monitor test alert"
    assert any(x.startswith("log://: would send (dry run") for x in out)
    # the same channel without --dry-run reaches both servers: the zeros above are the dry run's
    real = run_cli("notify-test", "team", "--config", str(cfg))
    assert real.returncode == 0, real.stdout + real.stderr
    assert len(smtp.messages) == 1 and len(webhook.received) == 1
