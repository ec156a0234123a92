"""Rule files load off the event loop, within size limits (issue 15: a 10 MB rule file stalled
polling for 42 s with nothing logged and took the daemon to 1 GB). The real daemon through the
real CLI, a loopback feed server and the /healthz endpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from conftest import db_rows, monitor_cmd, rss, run_cli, wait_for, write_config
from servers import free_port

STORY = {"title": "Gefechte im Gebiet Kursk, Wetter mild", "guid": "k-1",
         "description": "Kämpfe im Gebiet Kursk dauern an."}  # its page: a 404, so the feed's text


def generated(n: int) -> str:
    """``n`` rules in one file, flow style (one a line, the densest YAML: the most rules a byte),
    each of a word and a phrase of its own."""
    def word(i: int) -> str:
        out = "zq"
        while True:
            out, i = out + "abcdefghijklmnopqrstuvwxyz"[i % 26], i // 26
            if not i:
                return out

    lines = ["rules:"] + [f'  - {{id: g{i}, title: "Generated {i}", any: [{word(3 * i)}, '
                          f'"{word(3 * i + 1)} {word(3 * i + 2)}"]}}' for i in range(n)]
    return "\n".join(lines) + "\n"


def drop(folder: Path, name: str, text: str) -> Path:
    """Put a rule file in place at once (renamed in), as an editor or a deploy does."""
    tmp = folder / f".{name}.part"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, folder / name)
    return folder / name


def with_limits(cfg: Path, **keys: int) -> Path:
    lines = "".join(f"{k} = {v}\n" for k, v in keys.items())
    cfg.write_text(cfg.read_text("utf-8").replace("[monitor]\n", "[monitor]\n" + lines, 1), encoding="utf-8")
    return cfg


def start(cfg: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen([*monitor_cmd(), "run", "--config", str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=log.open("w", encoding="utf-8"), text=True)


def stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def test_a_file_over_the_limit_is_refused_by_name_at_start(tmp_path, rules_copy):
    big = drop(rules_copy, "big.yaml", generated(400))
    cfg = with_limits(write_config(tmp_path, feeds=[], channels={"console": ["log://"]}, rules=rules_copy),
                      rules_max_file_bytes=20_000)
    size = big.stat().st_size
    for command in ("check", "run"):
        res = run_cli(command, "--config", str(cfg), timeout=60)
        assert res.returncode == 2, (command, res.stderr)
        assert res.stderr.strip().splitlines() == [
            f"error: {big}: {size:,} bytes, over the limit of 20,000 bytes (monitor.rules_max_file_bytes)"], res.stderr

    big.unlink()  # the files together over the total: the folder is named
    for name in ("a.yaml", "b.yaml"):
        drop(rules_copy, name, generated(150).replace("id: g", f"id: {name[0]}"))
    with_limits(cfg, rules_max_total_bytes=20_000)
    res = run_cli("check", "--config", str(cfg))
    assert res.returncode == 2 and "bytes, over the limit of 20,000 bytes (monitor.rules_max_total_bytes)" \
        in res.stderr and str(rules_copy) in res.stderr and "Traceback" not in res.stderr, res.stderr


def test_a_reload_over_the_limit_keeps_the_last_good_set_and_polling(tmp_path, feed_server, rules_copy):
    url = feed_server.add("/feed.xml", rss([]))
    cfg = with_limits(write_config(tmp_path, feeds=[url], channels={"console": ["log://"]}, rules=rules_copy),
                      rules_max_file_bytes=20_000, rules_max_total_bytes=30_000)
    log = tmp_path / "daemon.log"
    polls = lambda: sum(1 for p, _ in feed_server.log if p == "/feed.xml")  # noqa: E731
    proc = start(cfg, log)
    try:
        wait_for(lambda: db_rows(tmp_path / "monitor.db", "SELECT baselined_at FROM feeds")[0][0], "baseline")
        # Every generated rule would fire on the story's "Wetter": they must not be loaded.
        big = drop(rules_copy, "big.yaml", generated(400).replace("any: [", "any: [Wetter, "))
        size = big.stat().st_size
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "rules reload refused" in log.read_text(), "the refusal")
        polled = polls()
        feed_server.add("/feed.xml", rss([{**STORY, "link": feed_server.url("/a/kursk")}]))
        wait_for(lambda: polls() > polled + 1, "the feed still polled")
        wait_for(lambda: db_rows(tmp_path / "monitor.db", "SELECT COUNT(*) FROM outbox WHERE state = 'sent'")
                 [0][0] == 1, "the story alerted by the last good rules")

        big.unlink()  # each file under its limit, together over the total: refused the same way
        for name in ("a.yaml", "b.yaml", "c.yaml"):
            drop(rules_copy, name, generated(150).replace("id: g", f"id: {name[0]}"))
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "setting=monitor.rules_max_total_bytes" in log.read_text(), "the total refused")
        assert proc.poll() is None, "the daemon must survive a refused reload"
    finally:
        code = stop(proc)
    err = log.read_text()
    assert code == 0, err
    line = next(ln for ln in err.splitlines() if "setting=monitor.rules_max_file_bytes" in ln)
    assert "rules reload refused, keeping the last good set of 2 rules" in line, line
    assert line.endswith(f"file={big} bytes={size} limit=20000 setting=monitor.rules_max_file_bytes"), line
    [alert] = [ln for ln in err.splitlines() if "ALERT" in ln]
    assert "[Kursk region]" in alert and "Generated" not in alert, alert
    assert "rules reloaded" not in err.split("rules reload refused", 1)[1]
    assert "Traceback" not in err


def _healthz(port: int) -> tuple[int, float]:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=30) as r:
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    return status, time.monotonic() - started


def test_healthz_and_polls_go_on_while_a_large_rule_set_loads(tmp_path, feed_server, rules_copy):
    url = feed_server.add("/feed.xml", rss([]))
    port = free_port()
    cfg = write_config(tmp_path, feeds=[url], channels={"console": ["log://"]}, rules=rules_copy,
                       extra=f"[http]\nenabled = true\nport = {port}")
    text = generated(25_000)  # ~1.8 MB: under the default limits, seconds to load
    assert len(text.encode()) < 2 * 1024 * 1024
    log = tmp_path / "daemon.log"
    proc = start(cfg, log)
    answers: list[tuple[int, float]] = []

    def probe() -> bool:
        done = "rules reloaded rules=25002" in log.read_text()
        answers.append(_healthz(port))
        return done

    try:
        wait_for(lambda: db_rows(tmp_path / "monitor.db", "SELECT baselined_at FROM feeds")[0][0], "baseline")
        assert _healthz(port)[0] == 200
        polled = sum(1 for p, _ in feed_server.log if p == "/feed.xml")
        drop(rules_copy, "big.yaml", text)
        proc.send_signal(signal.SIGHUP)
        wait_for(probe, "the large set loaded", timeout=120)
        polled_during = sum(1 for p, _ in feed_server.log if p == "/feed.xml") - polled
    finally:
        code = stop(proc)
    err = log.read_text()
    assert code == 0, err
    loading = next(ln for ln in err.splitlines() if "rules loading" in ln and "files=4" in ln)
    loaded = next(ln for ln in err.splitlines() if "rules reloaded rules=25002" in ln)
    ms = float(loaded.rsplit("ms=", 1)[1].split()[0])
    assert ms > 1000, f"the load took {ms:.0f} ms: too quick to show that the loop went on meanwhile"
    slowest = max(seconds for _status, seconds in answers)
    assert all(status == 200 for status, _ in answers), answers
    # A loop that waited on the load would answer no sooner than the load ends: the slowest answer
    # stays under 1 s, or under half the load on a machine so busy that the load itself took long
    # (a run beside benchmarks: 1.07 s for a load that took several seconds)
    bound = max(1.0, ms / 2000)
    assert len(answers) >= 5 and slowest < bound, f"{len(answers)} answers, the slowest in {slowest:.2f}s " \
        f"(bound {bound:.2f}s, load {ms:.0f} ms)"
    assert polled_during >= 1, "the feed was not polled while the rules loaded"
    assert "bytes=" in loading and "Traceback" not in err
