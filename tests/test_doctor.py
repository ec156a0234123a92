"""``monitor doctor`` through the real console script: one ``ok|warn|fail  check: detail``
line per check, secrets never printed, exit 0 / 1 / 2; and the warning for a config file
others can read (``monitor check``)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import pytest
from conftest import monitor_cmd, rss, run_cli, write_config
from servers import free_port

from monitor.cli import doctor
from monitor.store import Store

LINE = re.compile(r"^(ok|warn|fail)  [\w -]+: \S")
SECRET = "s3cr3t-T0ken"


def lines(res) -> dict[str, tuple[str, str]]:
    out = res.stdout.splitlines()
    assert out and all(LINE.match(x) for x in out), res.stdout + res.stderr
    return {x.split(":", 1)[0][6:]: (x[:4].strip(), x.split(": ", 1)[1]) for x in out}


def healthy(tmp_path, **channels):
    cfg = write_config(tmp_path, feeds=[], channels={"console": ["log://"], **channels})
    cfg.chmod(0o600)
    Store(tmp_path / "monitor.db").close()
    (tmp_path / "monitor.db").chmod(0o600)
    return cfg


def test_healthy_setup_is_all_ok_and_never_prints_a_secret(tmp_path):
    cfg = healthy(tmp_path, hook=[f"json://bot:{SECRET}@127.0.0.1:9/hook?token={SECRET}"])
    res = run_cli("doctor", "--config", str(cfg))
    assert res.returncode == 0, res.stdout + res.stderr
    checks = lines(res)
    assert set(checks) == {"config", "config-permissions", "channel console", "channel hook", "rules",
                           "database", "database-permissions", "state-dir", "feeds", "deliveries"}
    assert all(level == "ok" for level, _ in checks.values()), res.stdout
    assert "quick_check ok" in checks["database"][1] and "json://" in checks["channel hook"][1]
    assert SECRET not in res.stdout + res.stderr


def test_full_runs_integrity_check(tmp_path):
    res = run_cli("doctor", "--config", str(healthy(tmp_path)), "--full")
    assert res.returncode == 0 and "integrity_check ok" in lines(res)["database"][1]


def test_failures_are_named_and_exit_1(tmp_path):
    cfg = write_config(tmp_path, feeds=[], channels={"console": ["log://"], "bad": ["nosuchscheme://x"]})
    cfg.chmod(0o644)
    (tmp_path / "monitor.db").write_bytes(b"this is not a database" * 100)
    res = run_cli("doctor", "--config", str(cfg))
    assert res.returncode == 1, res.stdout + res.stderr
    checks = lines(res)
    assert checks["config-permissions"] == ("ok", f"{cfg}: no secret written in it")
    assert checks["channel bad"][0] == "fail" and "nosuchscheme" in checks["channel bad"][1]
    assert checks["channel console"][0] == "ok"
    assert checks["database"][0] == "fail" and "monitor.db" in checks["database"][1]
    assert checks["state-dir"][0] == "ok"


def test_state_dir_that_cannot_be_created_fails(tmp_path):
    (tmp_path / "blocker").write_text("a file where the folder should be")
    cfg = write_config(tmp_path, feeds=[], channels={"console": ["log://"]})
    cfg.write_text(cfg.read_text().replace(str(tmp_path / "monitor.db"), str(tmp_path / "blocker" / "m.db")))
    res = run_cli("doctor", "--config", str(cfg))
    checks = lines(res)
    assert res.returncode == 1 and checks["state-dir"][0] == "fail" and "not a folder" in checks["state-dir"][1]
    assert checks["database"][0] == "warn"  # not created yet is not a failure


def test_broken_config_fails_and_bad_usage_is_2(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text("[fetch]\nallow_private = ['not-a-network']\n")
    res = run_cli("doctor", "--config", str(cfg))
    assert res.returncode == 1 and "not-a-network" in lines(res)["config"][1]
    assert run_cli("doctor", "--no-such-option").returncode == 2


INLINE = f"json://bot:{SECRET}@127.0.0.1:9/hook"


def test_check_warns_only_about_an_inline_secret_others_can_read(tmp_path):
    cfg = write_config(tmp_path, feeds=[], channels={"console": ["log://"], "hook": [INLINE]})
    cfg.chmod(0o644)
    res = run_cli("check", "--config", str(cfg))
    warnings = [x for x in res.stderr.splitlines() if x.startswith("warning:")]
    assert res.returncode == 0 and len(warnings) == 1, res.stderr
    assert f"{cfg} holds a secret inline (channels.hook.urls[0]: password)" in warnings[0]
    assert "readable by group and others (mode 0644)" in warnings[0]
    assert "${NAME}" in warnings[0] and "EnvironmentFile" in warnings[0] and "chmod" not in warnings[0]
    assert SECRET not in res.stdout + res.stderr
    cfg.chmod(0o600)
    res = run_cli("check", "--config", str(cfg))
    assert res.returncode == 0 and "warning" not in res.stderr, res.stderr


def test_the_readme_recipe_draws_no_warning(tmp_path):
    """The README's systemd recipe: config 0644 (the unit's DynamicUser must read it), secrets
    from the EnvironmentFile and a LoadCredential= file."""
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "HOOK_PASSWORD").write_text(SECRET + "\n")
    cfg = write_config(tmp_path, feeds=[], channels={
        "console": ["log://"], "hook": ["json://bot:${HOOK_PASSWORD}@127.0.0.1:9/hook/${HOOK_TOKEN}"],
        "slack": ["slack://${SLACK_TOKEN_A}/${SLACK_TOKEN_B}/${SLACK_TOKEN_C}/#news"]})
    cfg.chmod(0o644)
    env = {"CREDENTIALS_DIRECTORY": str(creds), "HOOK_TOKEN": "T0kenFromTheEnv42",
           "SLACK_TOKEN_A": "T0AAAA1111", "SLACK_TOKEN_B": "B0BBBB2222", "SLACK_TOKEN_C": "xyzTOKENabc123"}
    res = run_cli("check", "--config", str(cfg), env=env)
    assert res.returncode == 0 and "warning" not in res.stderr, res.stderr
    res = run_cli("doctor", "--config", str(cfg), env=env)
    assert lines(res)["config-permissions"][0] == "ok", res.stdout
    assert SECRET not in res.stdout and "T0kenFromTheEnv42" not in res.stdout and "xyzTOKENabc123" not in res.stdout


def test_doctor_warns_about_an_inline_secret_others_can_read(tmp_path):
    cfg = write_config(tmp_path, feeds=["https://example.org/rss?apikey=abc"],
                       channels={"console": ["log://"], "hook": [INLINE]})
    cfg.chmod(0o640)
    level, detail = lines(run_cli("doctor", "--config", str(cfg)))["config-permissions"]
    assert level == "warn" and "readable by group (mode 0640)" in detail, detail
    assert "channels.hook.urls[0]: password; feeds.0.url: query apikey" in detail


@pytest.mark.parametrize("url,warnings", [(INLINE, 1), ("json://bot:${HOOK_PASSWORD}@127.0.0.1:9/hook", 0)])
def test_daemon_start_warns_only_about_an_inline_secret(tmp_path, url, warnings):
    cfg = write_config(tmp_path, feeds=[], channels={"console": ["log://"], "hook": [url]})
    cfg.chmod(0o644)
    proc = subprocess.Popen([*monitor_cmd(), "run", "--config", str(cfg)], stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "HOOK_PASSWORD": SECRET})
    try:
        deadline, seen = time.monotonic() + 30, []
        while time.monotonic() < deadline and proc.stderr:
            line = proc.stderr.readline()
            seen.append(line)
            if " started feeds=" in line or not line:
                break
        assert " started feeds=" in seen[-1], "".join(seen)
        warned = [x for x in seen if "WARNING" in x]
        assert len(warned) == warnings, "".join(seen)
        if warnings:
            assert "config file holds a secret others can read" in warned[0] and str(cfg) in warned[0]
            assert "${NAME}" in warned[0]
        assert SECRET not in "".join(seen)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


PATH_TOKEN, HEADER = "PathT0ken4242", "HeaderValue77"
STORY = {"title": "Kämpfe im Gebiet Kursk gehen weiter", "link": "/a/kursk",
         "description": "Im Gebiet Kursk gehen die Kämpfe weiter."}


def test_failing_feeds_and_channels_are_reported_without_secrets(tmp_path, feed_server):
    """A feed answering 500 and a json:// channel to a closed port, through two real `monitor
    once` runs: doctor names the feed with its reason and the channel with its last error."""
    ok = feed_server.add("/ok.xml", rss([]))
    broken = feed_server.add("/broken.xml", "oops", status=500)
    hook = f"json://bot:{SECRET}@127.0.0.1:{free_port()}/hook/{PATH_TOKEN}?+X-Api-Key={HEADER}"
    cfg = write_config(tmp_path, feeds=[ok, broken], channels={"console": ["log://"], "hook": [hook]},
                       defaults=["hook"], extra='ops_channels = ["hook"]')
    text = cfg.read_text().replace("[poll]\n", "[poll]\nfailing_alert_after = 0.001\n")
    cfg.write_text(text.replace("[extract]\n", "[extract]\npages = false\n"))
    cfg.chmod(0o600)
    assert run_cli("once", "--config", str(cfg)).returncode == 0
    feed_server.add("/ok.xml", rss([{**STORY, "link": feed_server.url(STORY["link"])}]))
    second = run_cli("once", "--config", str(cfg))
    assert second.returncode == 0 and "failed=" in second.stdout, second.stdout + second.stderr

    res = run_cli("doctor", "--config", str(cfg))
    assert res.returncode == 1, res.stdout + res.stderr
    checks = lines(res)
    level, detail = checks["feed 2"]
    assert level == "fail" and detail.startswith(f"{broken}: failing since ") and "500" in detail, detail
    assert "feed 1" not in checks and "feeds" not in checks
    level, detail = checks["delivery hook"]
    assert level == "fail" and "last attempt failed" in detail and "1 alerts waiting for a retry" in detail, detail
    assert "ops notices failing" in detail, detail
    assert "json://bot:****@127.0.0.1" in checks["channel hook"][1]
    for secret in (SECRET, PATH_TOKEN, HEADER):
        assert secret not in res.stdout + res.stderr, secret


def test_a_healthy_database_says_so(tmp_path):
    checks = lines(run_cli("doctor", "--config", str(healthy(tmp_path))))
    assert checks["feeds"] == ("ok", "0 active, none failing")
    assert checks["deliveries"] == ("ok", "no failed or dead alerts, no failing ops notices")


def _feed(**kw):
    return {"id": 7, "url": "https://example.org/rss", "active": 1, "gone_at": None, "error_count": 3,
            "failing_since": 1000.0, "last_polled_at": 1500.0, "last_error_kind": "http",
            "last_error": "HTTP 503", **kw}


@pytest.mark.parametrize("row,now,expected", [
    (_feed(), 1000.0 + 3599, ("warn", "feed 7", "https://example.org/rss: failing since 59m ago "
                                                  "(3 failed polls): http: HTTP 503")),
    (_feed(), 1000.0 + 3600, ("fail", "feed 7", "https://example.org/rss: failing since 60m ago "
                                                  "(3 failed polls): http: HTTP 503")),
    (_feed(gone_at=900.0, error_count=0), 1000.0, (
        "warn", "feed 7", "https://example.org/rss: gone (HTTP 410) 100s ago; "
        "remove it from the config or with monitor feeds remove")),
    (_feed(error_count=0), 5000.0, ("ok", "feeds", "1 active, none failing")),
    (_feed(active=0), 5000.0, ("ok", "feeds", "0 active, none failing")),
])
def test_feed_health_fails_once_the_daemon_would_alert_ops(row, now, expected):
    assert doctor.feed_health([row], now, failing_alert_after=3600) == [expected]
