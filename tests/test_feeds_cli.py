"""``monitor feeds`` and its subcommands through the real CLI in a subprocess: add (with
discovery from an HTML page), remove, import-opml / export-opml round trip, health status."""

from __future__ import annotations

import json
import signal
import subprocess
from datetime import UTC, datetime, timedelta

from conftest import db_rows, monitor_cmd, rss, run_cli, wait_for, write_config

from monitor.opml import read_opml

OPML = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>Analysts</title></head><body>
  <outline text="Russland">
    <outline type="rss" text="Новости" xmlUrl="https://ru.example/rss.xml"/>
    <outline text="Regional"><outline type="rss" title="Kursk heute" xmlUrl="https://kursk.example/feed"/></outline>
  </outline>
  <outline type="rss" text="Tagesschau" xmlUrl="https://www.tagesschau.example/xml/rss2/" category="de,tv"/>
  <outline type="rss" text="FTP" xmlUrl="ftp://files.example/feed.xml"/>
</body></opml>
"""


def feeds_json(cfg) -> dict[str, dict]:
    res = run_cli("feeds", "--json", "--config", str(cfg))
    assert res.returncode == 0, res.stderr
    return {d["url"]: d for d in map(json.loads, res.stdout.splitlines())}


def test_import_export_opml_round_trip(tmp_path):
    cfg = write_config(tmp_path, feeds=["https://config.example/feed.xml"], channels={"console": ["log://"]})
    (tmp_path / "in.opml").write_text(OPML, encoding="utf-8")
    res = run_cli("feeds", "import-opml", str(tmp_path / "in.opml"), "--config", str(cfg))
    assert res.returncode == 0, res.stderr
    assert "3 feeds added, 0 already registered, 1 skipped" in res.stdout
    assert "ftp://files.example/feed.xml" in res.stdout
    again = run_cli("feeds", "import-opml", str(tmp_path / "in.opml"), "--config", str(cfg))
    assert "0 feeds added, 3 already registered" in again.stdout

    feeds = feeds_json(cfg)
    assert feeds["https://kursk.example/feed"]["tags"] == ["Russland", "Regional"]
    assert feeds["https://www.tagesschau.example/xml/rss2/"]["tags"] == ["de", "tv"]
    assert {d["status"] for d in feeds.values()} == {"new"}

    res = run_cli("feeds", "export-opml", str(tmp_path / "out.opml"), "--config", str(cfg))
    assert res.returncode == 0 and "4 feeds" in res.stdout
    out = {f.url: f for f in read_opml((tmp_path / "out.opml").read_bytes())}
    assert set(out) == set(feeds)
    assert out["https://ru.example/rss.xml"].title == "Новости"
    assert set(out["https://kursk.example/feed"].tags) == {"Russland", "Regional"}


def test_add_discovers_the_feed_of_a_page_and_remove_keeps_config_feeds(tmp_path, feed_server):
    feed = feed_server.add("/news/feed.xml", rss([], title="Lokalnachrichten"))
    page = feed_server.add("/news/", '<html><head><link rel="alternate" type="application/rss+xml" '
                           'href="feed.xml" title="RSS"></head><body>Hallo</body></html>', content_type="text/html")
    config_feed = feed_server.add("/config.xml", rss([]))
    cfg = write_config(tmp_path, feeds=[config_feed], channels={"console": ["log://"]})

    res = run_cli("feeds", "add", page, "--tag", "lokal", "--config", str(cfg))
    assert res.returncode == 0, res.stderr
    assert f"added: {feed} (Lokalnachrichten)" in res.stdout
    assert feeds_json(cfg)[feed]["tags"] == ["lokal"]
    assert "already registered" in run_cli("feeds", "add", feed, "--config", str(cfg)).stdout

    bad = run_cli("feeds", "add", feed_server.url("/nothing"), "--config", str(cfg))
    assert bad.returncode == 2 and "http-404" in bad.stderr and "--no-check" in bad.stderr
    assert "Traceback" not in bad.stderr

    refused = run_cli("feeds", "remove", config_feed, "--config", str(cfg))
    assert refused.returncode == 2 and "remove it there" in refused.stderr
    assert run_cli("feeds", "remove", feed, "--config", str(cfg)).returncode == 0
    assert feeds_json(cfg)[feed]["status"] == "inactive"
    assert run_cli("feeds", "remove", feed, "--config", str(cfg)).returncode == 2  # not active any more


def test_feeds_shows_silent_and_failing_feeds(tmp_path, feed_server):
    month_ago = datetime.now(UTC) - timedelta(days=30)
    stale = feed_server.add("/stale.xml", rss([
        {"title": f"Alt {i}", "link": f"http://example.org/a{i}", "date": month_ago + timedelta(hours=i)}
        for i in range(5)]))
    broken = feed_server.add("/broken.xml", b"<html>not a feed</html>", content_type="text/html")
    cfg = write_config(tmp_path, feeds=[stale, broken], channels={"console": ["log://"]})
    assert run_cli("once", "--config", str(cfg)).returncode == 0
    feeds = feeds_json(cfg)
    assert feeds[stale]["status"] == "silent" and feeds[stale]["cadence_s"] == 3600
    assert feeds[broken]["status"] == "failing" and feeds[broken]["last_error"].startswith("not-a-feed:")
    table = run_cli("feeds", "--config", str(cfg)).stdout
    assert "silent" in table and "failing" in table and " 60m " in table  # the learned cadence


def test_poll_makes_a_feed_due_now_for_the_running_daemon(tmp_path, feed_server):
    """A feed pinned to an hour, polled once by the real daemon: `monitor feeds poll` brings its
    second request at the daemon's next tick (0.5 s), not in an hour."""
    url = feed_server.add("/feed.xml", rss([{"title": "Wetter", "link": "http://example.org/a", "guid": "1"}]))
    cfg = write_config(tmp_path, feeds=[url], channels={"console": ["log://"]})
    cfg.write_text(cfg.read_text() + "interval = 3600\n")
    requests = lambda: [p for p, _ in feed_server.log if p == "/feed.xml"]  # noqa: E731
    with open(tmp_path / "daemon.log", "w") as err:
        proc = subprocess.Popen([*monitor_cmd(), "run", "--config", str(cfg)], stderr=err)
    try:
        wait_for(lambda: len(requests()) == 1 and db_rows(tmp_path / "monitor.db",
                 "SELECT next_check_at - last_polled_at FROM feeds")[0][0] > 3000, "the first poll, next in an hour")
        res = run_cli("feeds", "poll", "1", "--config", str(cfg))
        assert res.returncode == 0 and f"due now: {url}" in res.stdout, res.stdout + res.stderr
        wait_for(lambda: len(requests()) == 2, "the second poll at the next tick", timeout=15)
        res = run_cli("feeds", "poll", url, "--config", str(cfg))  # by URL too
        assert res.returncode == 0, res.stderr
        wait_for(lambda: len(requests()) == 3, "the third poll", timeout=15)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def test_poll_of_an_unknown_feed_exits_2_naming_it(tmp_path):
    cfg = write_config(tmp_path, feeds=["https://config.example/feed.xml"], channels={"console": ["log://"]})
    for feed in ("42", "https://nowhere.example/rss"):
        res = run_cli("feeds", "poll", feed, "--config", str(cfg))
        assert res.returncode == 2 and res.stderr.strip() == \
            f"error: {feed}: no active feed with this id or URL (see 'monitor feeds')", res.stderr
        assert "Traceback" not in res.stderr
