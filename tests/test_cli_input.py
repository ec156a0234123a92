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
