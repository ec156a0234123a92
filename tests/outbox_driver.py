"""Seeding the outbox with alerts, and a sender process for the crash test:

    python tests/outbox_driver.py DB JSON_URL   # recover, print "recovered [ids]", drain, print "done"

It is the project's own Sender against a real database and a real apprise json:// channel."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence

from monitor.config import NotifySection
from monitor.delivery import Sender
from monitor.models import Channel, Entry, FeedUpdate, Match
from monitor.notify import Notifier
from monitor.store import Store

FEED = "http://127.0.0.1:9/feed.xml"


def seed(store: Store, titles: Sequence[str], channels: Sequence[str] = ("hook",), now: float = 1000.0) -> None:
    """One entry and one match (rule 'r') per title, an outbox row per channel, ids in order."""
    store.sync_feeds([(FEED, "Seed feed", None)], now=now)
    [feed] = [f for f in store.feeds() if f.url == FEED]
    items = [(Entry(uid=f"guid:{t}", title=t, link=f"http://example.org/{i}", summary="", content="",
                    published=None, guid=t, content_hash=t),
              None, [Match("r", "Rule r", ("Kursk",), "title", "… Kursk …", channels=tuple(channels))])
             for i, t in enumerate(titles)]
    update = FeedUpdate(last_ok_at=now, last_status="ok", error_count=0, next_check_at=now + 900)
    store.record(feed, now=now, update=update, new=items, baseline=False)


async def _drain(db: str, url: str) -> None:
    store = Store(db)
    sender = Sender(store, Notifier({"hook": Channel("hook", (url,), "hook")}),
                    NotifySection(retry=0.01, max_retry=0.02, timeout=5))
    print("recovered", json.dumps(await sender.recover()), flush=True)
    while store.queue("hook"):  # the sync store, between passes: the sender's thread is idle then
        await sender.deliver()
    print("done", flush=True)


if __name__ == "__main__":
    asyncio.run(_drain(sys.argv[1], sys.argv[2]))
