"""``monitor users`` through the real CLI in a subprocess (issue 18): add, list, passwd, role,
remove; bad input (a short or empty password, a bad name or role, a taken name) is one
``error:`` line and exit 2, never a traceback; only an argon2 hash reaches the database."""

from __future__ import annotations

import json

import pytest
from conftest import db_rows, run_cli, write_config

from monitor import passwords


@pytest.fixture
def cfg(tmp_path):
    return write_config(tmp_path, feeds=[], channels={"console": ["log://"]})


def users(cfg) -> dict[str, dict]:
    res = run_cli("users", "list", "--json", "--config", str(cfg))
    assert res.returncode == 0, res.stderr
    return {u["name"]: u for u in map(json.loads, res.stdout.splitlines())}


def refused(res, words: str) -> None:
    assert res.returncode == 2, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], res.stderr
    assert "Traceback" not in res.stderr


def test_add_list_passwd_role_remove(cfg, tmp_path):
    res = run_cli("users", "add", "ana", "--role", "editor", "--password-stdin", "--config", str(cfg),
                  input="correct horse battery\n")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "added: ana (editor)"
    listed = users(cfg)
    assert set(listed) == {"ana"} and listed["ana"]["role"] == "editor" and "password_hash" not in listed["ana"]
    [(hashed,)] = db_rows(tmp_path / "monitor.db", "SELECT password_hash FROM users WHERE name = 'ana'")
    assert hashed.startswith("$argon2id$") and "correct" not in hashed
    assert passwords.verify(hashed, "correct horse battery")

    refused(run_cli("users", "add", "ANA", "--password-stdin", "--config", str(cfg), input="another one\n"),
            "exists")
    res = run_cli("users", "passwd", "Ana", "--password-stdin", "--config", str(cfg), input="a new password\n")
    assert res.returncode == 0, res.stderr
    [(new,)] = db_rows(tmp_path / "monitor.db", "SELECT password_hash FROM users")
    assert passwords.verify(new, "a new password") and not passwords.verify(new, "correct horse battery")
    assert run_cli("users", "role", "ana", "viewer", "--config", str(cfg)).returncode == 0
    assert users(cfg)["ana"]["role"] == "viewer"
    plain = run_cli("users", "list", "--config", str(cfg))
    assert plain.stdout.startswith("ana  viewer  added ")
    assert run_cli("users", "remove", "ana", "--config", str(cfg)).stdout.strip() == "removed: ana"
    assert users(cfg) == {}
    refused(run_cli("users", "remove", "ana", "--config", str(cfg)), "no user 'ana'")
    refused(run_cli("users", "passwd", "bob", "--password-stdin", "--config", str(cfg), input="long enough\n"),
            "no user 'bob'")
    refused(run_cli("users", "role", "bob", "editor", "--config", str(cfg)), "no user 'bob'")


@pytest.mark.parametrize("args,stdin,words", [
    (["add", "ana", "--password-stdin"], "short\n", "too short"),
    (["add", "ana", "--password-stdin"], "\n", "empty password"),
    (["add", "ana", "--password-stdin"], "", "empty password"),
    (["add", "bad name", "--password-stdin"], "long enough\n", "user name 'bad name'"),
    (["add", "-x", "--password-stdin"], "long enough\n", "no such option"),
    (["add", "ana", "--role", "admin", "--password-stdin"], "long enough\n", "role 'admin'"),
    (["role", "ana", "root"], None, "role 'root'"),
])
def test_bad_input_is_one_error_line_and_exit_2(cfg, tmp_path, args, stdin, words):
    res = run_cli("users", *args, "--config", str(cfg), input=stdin)
    if words == "no such option":  # click's own usage error: exit 2 too, no traceback
        assert res.returncode == 2 and "Traceback" not in res.stderr
        return
    refused(res, words)
    db = tmp_path / "monitor.db"  # refused before the database is even opened
    assert not db.exists() or db_rows(db, "SELECT COUNT(*) FROM users") == [(0,)]


def test_every_users_command_has_help():
    for sub in ("add", "remove", "passwd", "role", "list"):
        res = run_cli("users", sub, "--help")
        assert res.returncode == 0 and len(res.stdout.split("\n\n")[1].strip()) > 10, sub
