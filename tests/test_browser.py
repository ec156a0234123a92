"""The console in a real browser (issue 18): Playwright driving Debian's Chromium against the
real daemon (``monitor run``, its console on the [http] port) polling a loopback feed server.
Each test saves a screenshot under ``test-output/screenshots/``. No browser is downloaded: the
suite uses the system's Chromium (``.ci/run`` installs Debian's package when it is missing)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
from html import escape
from pathlib import Path

import pytest
from conftest import monitor_cmd, page, rss, run_cli, write_config
from console_kit import HOSTILE_TEXT, HOSTILE_TITLE, KURSK, KURSK_PAGE, OLD, add_user, store_only_match, wait_until

SHOTS = Path(__file__).resolve().parent.parent / "test-output" / "screenshots"
PASSWORD = "correct horse battery"
HTML = "text/html; charset=utf-8"


def chromium() -> str:
    """The system's Chromium binary (Debian's /usr/bin/chromium is a shell wrapper around it)."""
    for candidate in ("/usr/lib/chromium/chromium", shutil.which("chromium") or "",
                      shutil.which("chromium-browser") or ""):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("no Chromium: install Debian's chromium package (apt-get install chromium); .ci/run does")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


class Daemon:
    """``monitor run`` with its console on a free port, on a feed the test controls."""

    def __init__(self, tmp_path: Path, feed_server, items: list[dict]):
        self.feed_server = feed_server
        for it in OLD:
            feed_server.add(it["link"], page(it["title"], [it["description"] * 3]), content_type=HTML)
        feed_server.add(KURSK["link"], KURSK_PAGE, content_type="text/html; charset=utf-8")
        self.publish(items)
        self.cfg = write_config(tmp_path, feeds=[feed_server.url("/feed.xml")], channels={"console": ["log://"]},
                                extra="[http]\nenabled = true\nport = 0\n")
        add_user(self.cfg, "ana", "editor", PASSWORD)
        self.proc = subprocess.Popen([*monitor_cmd(), "run", "--config", str(self.cfg)], stderr=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, text=True)
        self.lines: list[str] = []
        self.url = ""

        def read() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.lines.append(line)
                m = re.search(r"http listening on=(http://\S+)", line)
                if m and not self.url:
                    self.url = m.group(1)

        threading.Thread(target=read, daemon=True).start()
        wait_until(lambda: self.url, "the daemon's console to listen", 60)
        wait_until(lambda: any("polled" in line and "/feed.xml" in line for line in self.lines), "the first poll", 60)

    def publish(self, items: list[dict]) -> None:
        self.feed_server.add("/feed.xml", rss([{**it, "link": self.feed_server.url(it["link"])} for it in items]))

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def daemon(tmp_path, feed_server):
    d = Daemon(tmp_path, feed_server, OLD)
    yield d
    d.stop()


def _page(browser, daemon, request):
    """A fresh browser context, logged in as an editor; every dialog and every request that
    leaves the console's origin is recorded (and fails the test in ``_done``)."""
    context = browser.new_context(base_url=daemon.url, timezone_id="Europe/Berlin", locale="en-GB")
    pg = context.new_page()
    pg.dialogs, pg.foreign, pg.errors = [], [], []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))  # the console's own script must not fail
    pg.on("request", lambda r: None if r.url.startswith(daemon.url) else pg.foreign.append(r.url))
    pg.goto("/")
    assert "/login" in pg.url
    pg.fill("input[name=name]", "ana")
    pg.fill("input[name=password]", PASSWORD)
    pg.click("button[type=submit]")
    pg.wait_for_url(re.compile(r".*/$"))
    return pg


def _done(pg, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    assert pg.dialogs == [], pg.dialogs
    assert pg.errors == [], pg.errors
    assert pg.foreign == [], pg.foreign
    pg.context.close()


def test_an_alert_arrives_while_the_inbox_is_open_then_its_story_and_a_verdict(browser, daemon, request):
    pg = _page(browser, daemon, request)
    assert pg.locator("#inbox article.alert").count() == 0
    daemon.publish([KURSK, *OLD])  # the story appears on the feed; the daemon polls every second
    pg.wait_for_selector("#inbox article.alert", timeout=45000)  # pushed by server-sent events: no reload
    row = pg.locator("#inbox article.alert").first
    assert "Gefechte im Gebiet Kursk" in row.inner_text()
    assert "new" in (row.get_attribute("class") or "")
    assert row.locator("mark").count() >= 1
    when = row.locator("time").first
    assert when.inner_text() in ("just now", "1 min ago")  # the viewer's words ...
    assert "UTC" not in when.get_attribute("title") and "CET" in when.get_attribute("title")  # ... and zone
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SHOTS / "inbox.png"), full_page=True)  # the inbox with the live row
    row.locator("a.title").click()
    pg.wait_for_selector("section.why")
    assert "Kursk" in pg.inner_text("section.why")
    assert pg.locator("section.text mark").count() >= 2  # the evidence marked in the article
    assert pg.locator("section.history tbody tr").count() >= 1
    pg.click("section.feedback button[value=not]")
    pg.wait_for_selector("p.note")
    assert "Recorded: not relevant" in pg.inner_text("p.note")
    assert "not by ana" in pg.inner_text("ul.verdicts")
    # the story is about North Korean troops too: relevant to that rule, while kursk keeps "not"
    pg.click("form.rule-verdict[data-rule='north-korean-troops'] button[value=relevant]")
    pg.wait_for_selector("p.note:has-text('for north-korean-troops')")
    assert "Recorded: relevant for north-korean-troops" in pg.inner_text("p.note")
    nk = pg.locator("form.rule-verdict[data-rule='north-korean-troops'] button[value=relevant]")
    assert "chosen" in (nk.get_attribute("class") or "")
    kursk = pg.locator("form.rule-verdict[data-rule='kursk'] button[value=not]")
    assert "chosen" in (kursk.get_attribute("class") or "")
    assert "(not, kept)" in pg.inner_text("ul.verdicts")
    _done(pg, "story")


def test_poll_a_feed_now_and_add_one_by_its_page(browser, daemon, request):
    pg = _page(browser, daemon, request)
    daemon.feed_server.add("/news/feed.xml", rss([{"title": "Andere Meldung", "link": "/news/1", "guid": "n-1",
                                                    "description": "Nichts Besonderes."}], title="Andere Zeitung"),
                           content_type="application/rss+xml")
    daemon.feed_server.add("/news/", '<html><head><title>Andere Zeitung</title><link rel="alternate" '
                           'type="application/rss+xml" title="RSS" href="/news/feed.xml"></head><body>Start</body>'
                           '</html>', content_type=HTML)
    pg.goto("/feeds")
    pg.locator("tr", has_text="/feed.xml").first.locator("button.poll").click()
    pg.wait_for_selector("p.note")
    assert "Due now" in pg.inner_text("p.note")
    pg.fill("form.add-feed input[name=url]", daemon.feed_server.url("/news/"))
    pg.click("form.add-feed button[type=submit]")
    pg.wait_for_selector("p.note")
    note = pg.inner_text("p.note")
    assert "Added" in note and "/news/feed.xml" in note and "found on" in note
    assert pg.locator("tr", has_text="/news/feed.xml").count() == 1
    wait_until(lambda: ("/news/feed.xml", 200) in daemon.feed_server.answers, "the daemon to poll the new feed")
    _done(pg, "feeds")


def test_playground_on_history_and_a_rule_saved_with_an_error_shows_its_line(browser, daemon, request, rules_copy):
    pg = _page(browser, daemon, request)
    daemon.publish([KURSK, *OLD])
    wait_until(lambda: run_cli("alerts", "--json", "--config", str(daemon.cfg)).stdout.strip(), "the alert")
    pg.goto("/playground")
    pg.select_option("select[name=rule]", "kursk")
    pg.check("input[name=source][value=history]")
    pg.fill("input[name=since]", "30d")
    pg.click("form.playground button[type=submit]")
    pg.wait_for_selector("section.result")
    assert "alert: 1" in pg.inner_text("p.tiers")
    assert "Gefechte im Gebiet Kursk" in pg.inner_text("table.matches")
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SHOTS / "playground.png"), full_page=True)
    pg.goto("/rules/file/kursk.yaml")
    original = pg.input_value("textarea[name=text]")
    broken = original.replace("severity: normal", "severity: catastrophic")
    pg.fill("textarea[name=text]", broken)
    pg.click("form.rule-file button[type=submit]")
    pg.wait_for_selector("section.problems")
    problems = pg.inner_text("section.problems")
    assert re.search(r"line \d+", problems) and "severity" in problems
    assert pg.input_value("textarea[name=text]") == broken  # the draft is kept to fix
    _done(pg, "rule-error")


def test_search_finds_the_story_and_marks_the_words(browser, daemon, request):
    pg = _page(browser, daemon, request)
    daemon.publish([KURSK, *OLD])
    wait_until(lambda: run_cli("alerts", "--json", "--config", str(daemon.cfg)).stdout.strip(), "the alert")
    pg.goto("/search")
    pg.fill("input[name=q]", "nordkoreanischen Truppen")
    pg.press("input[name=q]", "Enter")
    pg.wait_for_selector("li.hit")
    assert "Gefechte im Gebiet Kursk" in pg.inner_text("ol.hits")
    assert pg.locator("li.hit mark").count() >= 1
    _done(pg, "search")


def test_a_story_that_did_not_alert_is_marked_should_have_alerted(browser, daemon, request):
    store_only_match(daemon.cfg.parent / "monitor.db")
    pg = _page(browser, daemon, request)
    pg.goto("/search?q=Wetterbericht")
    hit = pg.locator("li.hit", has_text="Wetterbericht mit Kursk am Rande")
    assert "matched, no alert: kursk" in hit.inner_text()
    hit.get_by_role("button", name="Should have alerted").click()
    pg.wait_for_selector("p.note")
    assert pg.inner_text("p.note") == ("Recorded: relevant. kursk has 1 judged match (1 relevant, 0 not); it learns "
                                       "from them once it has 10 with 3 of each.")
    assert "marked relevant" in pg.locator("li.hit", has_text="Wetterbericht").inner_text()
    assert "Wetterbericht" in pg.input_value("input[name=q]")  # back on the same search
    _done(pg, "missed")


def test_a_story_no_rule_matched_is_reported_and_the_playground_shows_it_still_missed(browser, daemon, request):
    storm = {"title": "Sturm über der Grenzregion", "link": "/a/sturm", "guid": "s-1",
             "description": "Der Wetterdienst warnt vor Orkan im Grenzgebiet."}
    daemon.feed_server.add(storm["link"], page(storm["title"], [storm["description"] * 3]), content_type=HTML)
    daemon.publish([storm, KURSK, *OLD])
    pg = _page(browser, daemon, request)
    pg.wait_for_selector("#inbox article.alert", timeout=45000)  # the same poll stored the storm, unmatched
    pg.goto("/search?q=Orkan")
    hit = pg.locator("li.hit", has_text="Sturm über der Grenzregion")
    hit.locator("select[name=rule]").select_option("north-korean-troops")
    hit.get_by_role("button", name="Should have matched").click()
    pg.wait_for_selector("p.note")
    assert pg.inner_text("p.note") == "Recorded: north-korean-troops should have matched it"
    assert "ana says north-korean-troops should have matched it" in pg.locator("li.hit").first.inner_text()
    pg.goto("/rules")
    assert "1 missed" in pg.locator("tr", has_text="north-korean-troops").inner_text()
    pg.goto("/playground")
    pg.select_option("select[name=rule]", "north-korean-troops")
    pg.check("input[name=source][value=history]")
    pg.click("form.playground button[type=submit]")
    pg.wait_for_selector("ul.misses")
    assert "still missed" in pg.inner_text("ul.misses") and "Sturm über der Grenzregion" in pg.inner_text("ul.misses")
    _done(pg, "reported-miss")


def test_a_hostile_feed_executes_nothing_and_calls_nowhere(browser, daemon, request):
    pg = _page(browser, daemon, request)
    hostile = {**KURSK, "title": escape(HOSTILE_TITLE), "description": escape(HOSTILE_TEXT), "link": "/a/hostile",
               "guid": "h-1"}
    daemon.feed_server.add("/a/hostile", "<html><body><p>" + HOSTILE_TEXT.replace("<", "&lt;") * 3
                           + "</p></body></html>", content_type=HTML)
    daemon.publish([hostile, *OLD])
    pg.wait_for_selector("#inbox article.alert", timeout=45000)  # arrives live: the pushed row is escaped too
    assert "<script>" in pg.inner_text("#inbox")  # shown as text
    pg.reload()
    pg.locator("#inbox a.title").first.click()
    pg.wait_for_selector("section.text")
    assert "javascript:" in pg.inner_text("section.text") or "<script>" in pg.inner_text("body")
    assert pg.evaluate("document.querySelectorAll('iframe, img[onerror], a[href^=javascript]').length") == 0
    alert_id = pg.url.rstrip("/").split("/")[-1].split("?")[0]
    data = json.loads(pg.goto(f"/story/{alert_id}.json").text())
    assert data["title"] == HOSTILE_TITLE
    _done(pg, "hostile")
