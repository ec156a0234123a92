"""What a feedback link does when someone follows it (issue 17): the daemon's ``/feedback/<token>``.

GET only shows what the link would record, with a button; the button POSTs, and only the POST
records. Link previewers fetch every GET they see (Slack's unfurler, mail scanners such as
Outlook Safe Links, chat clients), and a verdict recorded by a bot would be a wrong label the
learner trusts: one more click is the price of labels that are true. No script is needed for it.

Recording calls ``give_feedback``, the store method ``monitor feedback`` calls: one way to
change state, whatever the edge (ARCHITECTURE: the console is another edge). Who gave it:
``link:CHANNEL``: a link cannot tell who clicked, only which channel's message carried it.
Every answer is a ``web.Page`` whose words say what happened or why nothing did; nothing here
blocks the event loop (the store runs on its database thread).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from html import escape
from typing import Any, NamedTuple

from . import learn
from .errors import MonitorError
from .links import BadLink, Links

log = logging.getLogger(__name__)


async def progress(db: Any, rule_ids: Sequence[str]) -> list[str]:
    """``learn.progress`` of each rule a verdict was just given on (``db``: the store as the event
    loop sees it); none when the database cannot say: the verdict is recorded all the same."""
    try:
        return [learn.progress(r, await db.judged(r)) for r in rule_ids]
    except MonitorError as e:
        log.warning("learning progress not shown reason=%r", str(e))
        return []


class Page(NamedTuple):
    """A minimal HTML answer: a heading, one paragraph and, when ``button`` is set, a form that
    POSTs to the same URL."""

    status: int
    title: str
    text: str
    button: str | None = None


def html(page: Page) -> str:
    """The page as HTML, every text escaped. Pure."""
    form = (f'<form method="post"><button type="submit">{escape(page.button)}</button></form>'
            if page.button else "")
    return (f'<!doctype html><html><head><meta charset="utf-8"><meta name="robots" content="noindex">'
            f"<title>{escape(page.title)}</title></head><body><h1>{escape(page.title)}</h1>"
            f"<p>{escape(page.text)}</p>{form}</body></html>\n")


STATUS = {"malformed": 400, "forged": 403, "expired": 410}
WORDS = {"relevant": "relevant", "not": "not relevant"}


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t))


class Desk:
    """Answers ``/feedback/<token>`` with the link maker's key and the daemon's AsyncStore."""

    def __init__(self, db: Any, links: Links):
        self.db = db
        self.links = links

    def _refused(self, e: BadLink) -> Page:
        log.info("feedback link refused reason=%s", e.kind)
        return Page(STATUS[e.kind], f"Link {e.kind}", e.why)

    async def look(self, token: str) -> Page:
        """GET: what the link would record, and the button that records it; or why it cannot."""
        try:
            claim = self.links.check(token)
        except BadLink as e:
            return self._refused(e)
        alert = await self.db.alert(claim.alert_id)
        if alert is None:
            return Page(404, "Unknown alert", f"There is no alert {claim.alert_id} (pruned, or never sent). "
                        "Nothing was recorded.")
        used = await self.db.link_used(claim.token_id)
        if used is not None:
            return Page(409, "Link already used", f"This link recorded its verdict at {_when(used)}; "
                        "it works once. Nothing was recorded again.")
        if claim.rule is not None:  # judges one rule of the story: its other rules keep their verdicts
            return Page(200, f"Mark as {WORDS[claim.verdict]} for {claim.rule}?",
                        f"Alert {alert.id}: {alert.title} (for rule {claim.rule} only; its other rules: "
                        f"{', '.join(r.rule_id for r in alert.rules if r.rule_id != claim.rule) or 'none'})",
                        button=f"Record: {WORDS[claim.verdict]} for {claim.rule}")
        return Page(200, f"Mark as {WORDS[claim.verdict]}?",
                    f"Alert {alert.id}: {alert.title} ({', '.join(r.rule_id for r in alert.rules) or alert.rule_id})",
                    button=f"Record: {WORDS[claim.verdict]}")

    async def record(self, token: str) -> Page:
        """POST: record the verdict once; a replayed, forged, expired or unknown link records nothing."""
        try:
            claim = self.links.check(token)
        except BadLink as e:
            return self._refused(e)
        alert = await self.db.alert(claim.alert_id)
        given = None if alert is None else await self.db.give_feedback(
            claim.alert_id, claim.verdict, f"link:{alert.channel}", time.time(), via="link",
            token=claim.token_id, token_expires=claim.expires, rule=claim.rule)
        if given is None:
            log.info("feedback link refused reason=unknown-alert alert=%d", claim.alert_id)
            return Page(404, "Unknown alert", f"There is no alert {claim.alert_id} (pruned, or never sent). "
                        "Nothing was recorded.")
        if given.outcome == "no-rule":  # signed for a rule the story no longer has (a rule renamed since)
            log.info("feedback link refused reason=unknown-rule alert=%d", claim.alert_id)
            return Page(404, "Unknown rule", f"Rule {claim.rule} is not among alert {claim.alert_id}'s rules "
                        f"({', '.join(given.rules)}). Nothing was recorded.")
        if given.outcome == "used":
            log.info("feedback link refused reason=replayed alert=%d", claim.alert_id)
            return Page(409, "Link already used", f"This link recorded its verdict at {_when(given.at)}; "
                        "it works once. Nothing was recorded again.")
        log.info("feedback recorded alert=%d verdict=%s by=link:%s rules=%s", claim.alert_id, claim.verdict,
                 alert.channel if alert else "", ",".join(given.rules))
        learning = [f"{line}." for line in await progress(self.db, given.rules)]
        return Page(200, "Thank you", " ".join([
            f"Recorded: alert {claim.alert_id} is {WORDS[claim.verdict]}"
            + (f" for {claim.rule} only." if claim.rule else f" (rules: {', '.join(given.rules)})."),
            *filter(None, [learn.effect(claim.verdict, given.rules)]), *learning]))
