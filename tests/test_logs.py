"""Log output of the real CLI: one JSON object a line with --log-json, and no channel secret in
any line, whatever the level (our lines, apprise's words, urllib3's request lines)."""

from __future__ import annotations

import json
import logging

from conftest import rss, run_cli, write_config

from monitor.cli import logs

USER, PASSWORD, TOKEN = "hookuser", "S3cretPassw0rd", "tok-9f8e7d6c5b4a3921"
STORY = {"title": "Kämpfe im Gebiet Kursk gehen weiter", "link": "/a/kursk",
         "description": "Im Gebiet Kursk gehen die Kämpfe weiter."}


def _config(tmp_path, feed_server, webhook, level="DEBUG"):
    url = feed_server.add("/feed.xml", rss([]))
    secret = f"json://{USER}:{PASSWORD}@127.0.0.1:{webhook.port}/hook?token={TOKEN}"
    cfg = write_config(tmp_path, feeds=[url], channels={"hook": [secret]})
    text = cfg.read_text("utf-8").replace("tick = 0.5", f'tick = 0.5\nlog_level = "{level}"')
    cfg.write_text(text.replace("[extract]", "[extract]\npages = false"), "utf-8")
    return cfg, url


def test_log_json_lines_carry_no_secret(tmp_path, feed_server, webhook):
    cfg, _ = _config(tmp_path, feed_server, webhook)
    first = run_cli("once", "--config", str(cfg), "--log-json")
    assert first.returncode == 0, first.stderr
    feed_server.add("/feed.xml", rss([{**STORY, "link": feed_server.url(STORY["link"])}]))
    webhook.status = 500  # a failed delivery: apprise's error words reach our log line
    second = run_cli("once", "--config", str(cfg), "--log-json")
    assert second.returncode == 0, second.stderr
    assert "alerts=" in second.stdout and "failed=" in second.stdout, second.stdout
    stderr = first.stderr + second.stderr
    records = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    assert records, "no log output"
    for r in records:
        assert {"ts", "level", "logger", "msg"} <= set(r), r
    polled = [r for r in records if r["msg"].startswith("polled ")]
    assert polled and all("feed" in r and "status" in r for r in polled), polled
    assert any(r["msg"].startswith("alert failed") and r.get("channel") == "hook" for r in records), records
    assert webhook.refused >= 1
    for secret in (PASSWORD, TOKEN):
        assert secret not in stderr and secret not in second.stdout


def test_text_is_the_default_and_masks_too(tmp_path, feed_server, webhook):
    cfg, _ = _config(tmp_path, feed_server, webhook)
    out = run_cli("once", "--config", str(cfg))
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert lines and not lines[0].startswith("{")
    assert any(" polled feed=" in line for line in lines), out.stderr
    assert PASSWORD not in out.stderr and TOKEN not in out.stderr


def test_redact_masks_message_args_and_tracebacks():
    url = f"slack://T0AAAA1111/B0BBBB2222/{TOKEN}/#news"
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed url=%s", (url,), None)
    try:
        raise RuntimeError(f"cannot post to {url} as {PASSWORD}")
    except RuntimeError:
        import sys
        record.exc_info = sys.exc_info()
    logs.Redact(logs.secrets_of([url, f"mailto://me:{PASSWORD}@mail.example.com"])).filter(record)
    text = record.getMessage()
    assert "T0AAAA1111" not in text and TOKEN not in text and PASSWORD not in text
    assert "failed url=slack://****/****/****/#news" in text and "RuntimeError" in text
    assert "mail.example.com" not in logs.secrets_of([f"mailto://me:{PASSWORD}@mail.example.com"])


def test_channels_added_by_a_reload_are_masked_too(tmp_path):
    from monitor import config
    from monitor.loading import mask_channel_urls

    redact = logs.Redact(logs.secrets_of(["log://"]))
    handler = logging.NullHandler()
    handler.addFilter(redact)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        path = tmp_path / "c.toml"
        path.write_text(f'[channels.hook]\nurls = ["json://u:{PASSWORD}@127.0.0.1/x?token={TOKEN}"]\n', "utf-8")
        mask_channel_urls(config.load(path))
    finally:
        root.removeHandler(handler)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s %s", (PASSWORD, TOKEN), None)
    redact.filter(record)
    assert record.getMessage() == "**** ****"


def test_every_secret_part_is_masked_through_the_real_setup_short_ones_included(tmp_path, capsys, monkeypatch):
    """The CLI's own setup (config.load -> logging_for): user from ${NAME}, a 3-character
    password, a path token, a query token, a header value; a Slack URL's three tokens."""
    from monitor import config
    from monitor.cli import logging_for

    monkeypatch.setenv("HOOK_USER", "bob")
    path = tmp_path / "c.toml"
    path.write_text('[channels.hook]\nurls = ["json://${HOOK_USER}:p4x@127.0.0.1:9/hooks/Zq81kPath?'
                    'token=k9z&+X-Api-Key=h7y&mode=x"]\n'
                    '[channels.slack]\nurls = ["slack://T0AAAA1111/B0BBBB2222/xyzTOKENabc123/#news"]\n', "utf-8")
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logging_for(config.load(path))
        logging.getLogger("monitor.test").warning(
            "as bob:p4x@127.0.0.1 path=/hooks/Zq81kPath token=k9z header=h7y quoted=%s slack=%s "
            "alerts=1 words=p4xylophone,bobcat", "Zq81kPath%2Fp4x", "T0AAAA1111/B0BBBB2222/xyzTOKENabc123")
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
    err = capsys.readouterr().err
    line = err.strip().splitlines()[-1]
    assert line.endswith("as ****:****@127.0.0.1 path=/hooks/**** token=**** header=**** quoted=****%2F**** "
                         "slack=****/****/**** alerts=1 words=p4xylophone,bobcat"), err
