"""``monitor doctor`` through the real console script: one ``ok|warn|fail  check: detail``
line per check, secrets never printed, exit 0 / 1 / 2; and the warning for a config file
others can read (``monitor check``)."""

from __future__ import annotations

import re
import signal
import subprocess
import time

from conftest import monitor_cmd, run_cli, write_config

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
                           "database", "database-permissions", "state-dir"}
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
    assert checks["config-permissions"][0] == "warn" and "chmod 600" in checks["config-permissions"][1]
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


def test_check_warns_about_a_config_others_can_read(tmp_path):
    cfg = write_config(tmp_path, feeds=[], channels={"console": ["log://"]})
    cfg.chmod(0o640)
    res = run_cli("check", "--config", str(cfg))
    assert res.returncode == 0 and "accessible by group" in res.stderr and "may hold tokens" in res.stderr
    cfg.chmod(0o600)
    res = run_cli("check", "--config", str(cfg))
    assert res.returncode == 0 and "warning" not in res.stderr


def test_daemon_start_warns_about_a_config_others_can_read(tmp_path):
    cfg = write_config(tmp_path, feeds=[], channels={"console": ["log://"]})
    cfg.chmod(0o644)
    proc = subprocess.Popen([*monitor_cmd(), "run", "--config", str(cfg)], stderr=subprocess.PIPE, text=True)
    try:
        deadline, seen = time.monotonic() + 30, []
        while time.monotonic() < deadline and proc.stderr:
            line = proc.stderr.readline()
            seen.append(line)
            if "config file too open" in line or not line:
                break
        assert "config file too open" in seen[-1] and "others" in seen[-1], "".join(seen)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
