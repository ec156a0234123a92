"""Delivering the outbox: every alert reaches its channel at least once, in order, or is
declared dead where people see it. Never silently dropped.

One alert row per channel moves through these states (store/outbox.py holds the SQL):

    pending --claim--> sending --apprise ok--------------------------> sent
       ^                  |----apprise failed, tries left-----------> failed --due--> sending ...
       |                  |----refused max_attempts times / too old-> dead  (+ ops notice)
       |                  '----crash: found 'sending' at start-up---> pending (attempt counted)
       '---- `monitor alerts retry ID | --dead` (fresh attempts and max_age) ---- failed, dead

- Noise control (noise.py decides, store/noise.py holds the SQL): a due alert that may not go
  now (quiet hours, the channel's digest schedule, the rule's rate limit; never ``urgent``) goes
  ``pending -> held``; held alerts leave together as one digest, whose carrier row goes
  ``held -> pending`` and through the states above, the others ``held -> digest -> sent`` with it.
- Claim before send, with a lease: the row is committed as 'sending', owned by this process
  until ``notify.timeout`` + LEASE_MARGIN (monitor/leases.py), before apprise is called. There
  is no window for a loss: a sender that dies leaves the row leased, and once the lease runs
  out any sender takes it over (a daemon starting on this host frees a dead local owner's
  leases at once). No one takes a live owner's claim, so two senders on one database never
  send the same alert twice by resetting each other. The window for a duplicate is a sender
  dying after the service accepted the message and before the row is marked 'sent'. A database
  that refuses that write (locked, full disk) does not make one: the send is remembered in
  memory and recorded at the channel's next pass, before anything else; only a process that
  dies before that leaves it to the lease, and the alert is sent once more. (A send that
  outlives ``notify.timeout`` is retried although the service may still take it late: the
  same kind of duplicate, logged as such.)
- Order: each channel is a queue in id order. Its oldest undelivered alert is its head; while
  the head waits for a retry, the channel's later alerts wait too (an alert never overtakes
  an older one). Each channel is drained by its own task on a thread pool, so a slow or
  failing channel holds back only itself.
- Retries: ``schedule.retry_alert``, full jitter between ``notify.retry`` and an exponential
  bound capped at ``notify.max_retry``, never sooner than the service's Retry-After (429/503;
  notify.py reads it from the HTTP response). Any non-2xx answer, 404 included, is a failure.
- Dead: after ``notify.max_attempts`` attempts the service refused (a 4xx such as 400, 403,
  404: see ``refused``), or ``notify.max_age`` seconds undelivered, whatever the cause; an
  outage (no answer, 5xx, 429) only ends with the age, so a long one loses nothing.
  The row stays (``monitor alerts --state dead``) and an ops notice goes to
  ``notify.ops_channels`` in the same transaction; the next alert of the channel moves up.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from . import leases, noise, schedule
from .config import NotifySection
from .errors import NotifyError
from .models import Alert, Answer, Channel
from .notify import Notifier
from .store import StoreAPI, StoreError
from .store.aio import AsyncStore

log = logging.getLogger(__name__)
NOTICES = "\0notices"  # the task key of the ops notices' pass (no channel can be named so)
LEASE_MARGIN = 30.0  # seconds a claim outlives notify.timeout: the answer's trip back and the write


def refused(status: int | None) -> bool:
    """The service turned this message down (a 4xx but 408 Request Timeout, 425 Too Early and
    429 Too Many Requests): sending it again unchanged will not help. An outage (no answer, a
    5xx, a 429) is not a refusal: it ends with ``notify.max_age``, never with a count, so a
    channel that is down for hours delivers everything once it is back. Pure."""
    return status is not None and 400 <= status < 500 and status not in (408, 425, 429)


def verdict(alert: Alert, now: float, max_attempts: int, max_age: float) -> str:
    """What to do with a channel's head alert now: 'send', 'wait' (not due, or in flight under a
    live lease) or 'dead' (too many attempts or too old). Pure."""
    if alert.state == "sending" and (alert.lease_until is not None and alert.lease_until > now):
        return "wait"  # another sender (or this one) holds it; an expired lease is taken over
    if now - (alert.revived_at or alert.created_at) >= max_age or (
            alert.attempts >= max_attempts and refused(alert.last_status)):
        return "dead"
    return "send" if alert.next_attempt_at <= now else "wait"


@functools.lru_cache(maxsize=256)
def _policy(ch: Channel) -> noise.Policy:
    return noise.policy(ch.digest, ch.quiet_hours, ch.timezone, ch.rate_limit, ch.followup_every)


class Sender:
    def __init__(self, store: StoreAPI | AsyncStore, notifier: Notifier, cfg: NotifySection, *,
                 clock: Callable[[], float] = time.time, rng: random.Random | None = None,
                 batch: int = 100, threads: int = 16, owner: str = leases.OWNER, poll_interval: float = 0.0):
        self.db = store if isinstance(store, AsyncStore) else AsyncStore(store)
        self.poll_interval = poll_interval  # a gone owner's feeds wait this long at least (expire_leases)
        self.notifier, self.cfg, self.owner = notifier, cfg, owner
        self.clock, self.rng, self.batch = clock, rng or random.Random(), batch
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="sender")
        self.tasks: dict[str, asyncio.Task[tuple[int, int]]] = {}
        # alerts the service accepted whose 'sent' the database refused: recorded at the next pass
        self.unrecorded: dict[int, tuple[str, float, int | None]] = {}  # id -> (channel, when, status)

    def close(self) -> None:
        self._pool.shutdown(wait=False)

    async def recover(self) -> list[int]:
        """At start-up: alerts leased to a process of this host that is gone become claimable
        at once (a kill -9 need not wait for the lease). A live owner's leases are left alone."""
        dead = leases.dead(await self.db.lease_owners(), me=self.owner)
        ids = await self.db.expire_leases(dead, self.clock(), self.poll_interval)
        if ids:
            log.warning("outbox leases freed alerts=%d ids=%s owners=%s: left 'sending' by a sender that is gone; "
                        "sending them again (the service may already have them)", len(ids), ids[:20], ",".join(dead))
        return ids

    async def start(self) -> list[asyncio.Task[tuple[int, int]]]:
        """Start a pass for every channel with undelivered alerts that has none running, and one
        for the ops notices; return the running passes without waiting for them."""
        try:
            queued = [*await self.db.queued_channels(), *await self.db.held_channels()]
        except StoreError as e:
            log.warning("delivery paused reason=%r: retried at the next pass", str(e))
            queued = []
        channels = [*queued, *(ch for ch, _, _ in self.unrecorded.values()), NOTICES]
        for key in dict.fromkeys(channels):
            if key not in self.tasks:
                task = asyncio.ensure_future(self._notices() if key == NOTICES else self._channel(key))
                self.tasks[key] = task
                task.add_done_callback(functools.partial(self._finished, key))
        return list(self.tasks.values())

    def _finished(self, key: str, _task: object) -> None:
        self.tasks.pop(key, None)

    async def deliver(self) -> tuple[int, int]:
        """One full pass over every channel and the ops notices; returns (sent, failed)."""
        results = await asyncio.gather(*await self.start())
        return sum(s for s, _ in results), sum(f for _, f in results)

    def policy(self, channel: str) -> noise.Policy | None:
        ch = self.notifier.channels.get(channel)
        return _policy(ch) if ch is not None else None

    async def digest(self, channel: str) -> int | None:
        """Put the channel's held alerts into one digest, due now (the daemon's cron job for
        ``[channels.NAME] digest``, and the release of quiet hours and rate limits). Not in the
        channel's quiet hours: they end with a digest anyway. The carrier's id, or None."""
        p, now = self.policy(channel), self.clock()
        if p is None or noise.quiet(p, now):
            return None
        carrier = await self.db.bundle(channel, now)
        if carrier is not None:
            log.info("digest queued id=%d channel=%s", carrier, channel)
        return carrier

    async def _release(self, channel: str) -> None:
        """Held alerts leave as one digest when noise.release says so."""
        p, now = self.policy(channel), self.clock()
        held = await self.db.held(channel) if p is not None else {}
        if p is None or not held:
            return
        freed = False
        if p.rate is not None and "rate" in held:
            for r in await self.db.held_rules(channel, "rate"):
                freed = freed or await self.db.sent_recently(channel, r, now - p.rate[1]) < p.rate[0]
        first_polls = "backlog" in held and await self.db.first_polls_pending() > 0
        if noise.release(p, now, held, freed, first_polls):
            await self.digest(channel)

    async def _hold(self, alert: Alert, now: float) -> bool:
        """Hold a due alert for a digest if the channel's noise settings say so (noise.hold)."""
        p = self.policy(alert.channel)
        if p is None or alert.digest_id is not None or alert.attempts or alert.state != "pending":
            return False
        recent = await self.db.sent_recently(alert.channel, alert.rule_id, now - p.rate[1]) if p.rate else 0
        reason = noise.hold(p, alert.severity, now, recent)
        if reason is None or not await self.db.hold(alert.id, reason):
            return False
        log.info("alert held id=%d channel=%s rule=%s reason=%s", alert.id, alert.channel, alert.rule_id, reason)
        return True

    async def _channel(self, channel: str) -> tuple[int, int]:
        """Deliver the channel's due alerts in order; stop at the first that is not due or fails.
        Alerts that must wait (quiet hours, digest, rate limit) are held and skipped. A database
        that cannot be read or written pauses the channel until the next pass: one warning."""
        try:
            return await self._drain(channel)
        except StoreError as e:
            log.warning("delivery paused channel=%s reason=%r: retried at the next pass", channel, str(e))
            return 0, 0

    async def _drain(self, channel: str) -> tuple[int, int]:
        sent = failed = 0
        await self._record_sent(channel)
        await self._release(channel)
        lease = self.cfg.timeout + LEASE_MARGIN
        while True:
            queue = await self.db.queue(channel, self.batch)
            for alert in queue:
                now = self.clock()
                what = verdict(alert, now, self.cfg.max_attempts, self.cfg.max_age)
                if what == "wait":
                    return sent, failed
                if what == "dead":
                    await self._dead(alert, now, attempted=False, error=alert.last_error or "never delivered")
                    failed += 1
                    continue
                if await self._hold(alert, now):
                    continue
                if not await self.db.claim(alert.id, now, self.owner, lease):
                    return sent, failed
                outcome = await self._attempt(alert)
                if outcome != "sent":
                    return sent, failed + (outcome == "failed")
                sent += 1
            if len(queue) < self.batch:
                return sent, failed

    async def _record_sent(self, channel: str) -> None:
        """Record the channel's sends whose 'sent' the database refused before, oldest first.
        A StoreError means it still refuses: the channel waits, and nothing is sent twice."""
        for alert_id, (ch, when, status) in sorted(self.unrecorded.items()):
            if ch == channel:
                await self.db.mark_sent(alert_id, when, status)
                del self.unrecorded[alert_id]
                log.info("alert sent, recorded late id=%d channel=%s", alert_id, channel)

    async def _attempt(self, alert: Alert) -> str:
        """Send one claimed alert: 'sent', 'failed' (recorded, retried later) or 'unrecorded'
        (the service took it, the database did not take the 'sent': kept in memory)."""
        status = retry_after = None
        try:
            if alert.digest_id == alert.id:
                p = self.notifier.channels.get(alert.channel)
                digest = await self.db.digest(alert.id, p.rate_limit if p else "")
                answer = await self._run(self.notifier.send_digest, digest)
            else:
                answer = await self._run(self.notifier.send, alert)
        except NotifyError as e:
            error, status, retry_after = str(e), e.status, e.retry_after
        except TimeoutError:
            error = f"no answer within {self.cfg.timeout:g}s (the service may still take it: a duplicate is possible)"
        except Exception as e:  # a bug must not stall the channel's queue for ever
            log.exception("BUG while sending alert id=%d channel=%s", alert.id, alert.channel)
            error = f"internal: {type(e).__name__}: {e}"
        else:
            log.info("alert sent id=%d channel=%s rule=%s attempts=%d answer=%r title=%r", alert.id, alert.channel,
                     alert.rule_id, alert.attempts + 1, answer.detail[:120], alert.title[:80])
            when = self.clock()
            try:
                await self.db.mark_sent(alert.id, when, answer.status)
            except StoreError as e:
                self.unrecorded[alert.id] = (alert.channel, when, answer.status)
                log.warning("alert sent but not recorded id=%d channel=%s reason=%r: recorded at the channel's "
                            "next pass, not sent again", alert.id, alert.channel, str(e))
                return "unrecorded"
            return "sent"
        now = self.clock()
        done = alert.attempts + 1
        after = dataclasses.replace(alert, attempts=done, last_status=status)
        if verdict(after, now, self.cfg.max_attempts, self.cfg.max_age) == "dead":
            await self._dead(alert, now, attempted=True, error=error, status=status)
            return "failed"
        next_at = schedule.retry_alert(now, done, self.cfg.retry, self.cfg.max_retry, self.rng, retry_after)
        await self.db.mark_failed(alert.id, error, next_at, now=now, status=status)
        log.warning("alert failed id=%d channel=%s attempts=%d retry_in=%.0fs%s error=%r", alert.id, alert.channel,
                    done, next_at - now, f" retry_after={retry_after:g}" if retry_after is not None else "", error)
        return "failed"

    async def _dead(self, alert: Alert, now: float, *, attempted: bool, error: str, status: int | None = None) -> None:
        attempts = alert.attempts + int(attempted)
        age = now - (alert.revived_at or alert.created_at)
        why = (f"after {attempts} attempts (notify.max_attempts)" if attempts >= self.cfg.max_attempts
               else f"after {age / 3600:.1f} h undelivered (notify.max_age)")
        reason = f"dead {why}; last error: {error}"
        rules = ", ".join(f"{r.title} ({r.rule_id})" for r in alert.rules) or alert.rule_id
        body = (f"Alert {alert.id} for channel {alert.channel!r} was given up on, {why}.\n"
                f"Rules: {rules}\nStory: {alert.title}\n{alert.link or ''}\n"
                f"Last error: {error}\nIt is kept: 'monitor alerts show {alert.id}' shows it, "
                f"'monitor alerts retry {alert.id}' (or --dead for all) sends it again.")
        notices = [(ch, f"Alert undeliverable: [{alert.rule_title}] {alert.title}"[:200], body)
                   for ch in self.cfg.ops_channels]
        await self.db.mark_dead(alert.id, now, reason, notices, attempted=attempted, status=status)
        log.error("alert dead id=%d channel=%s rule=%s attempts=%d ops_notices=%d reason=%r", alert.id,
                  alert.channel, alert.rule_id, attempts, len(notices), reason)

    async def _notices(self) -> tuple[int, int]:
        """Due ops notices, oldest first; a failed one is retried with the same backoff, for ever."""
        sent = failed = 0
        try:
            pending = await self.db.pending_notices(self.clock(), self.batch)
        except StoreError as e:
            log.warning("ops notices paused reason=%r: retried at the next pass", str(e))
            return 0, 0
        for n in pending:
            error: str | None = None
            try:
                await self._run(self.notifier.send_text, n.channel, n.title, n.body)
            except (NotifyError, TimeoutError) as e:
                error = str(e) or f"no answer within {self.cfg.timeout:g}s"
            except Exception as e:
                log.exception("BUG while sending ops notice id=%d channel=%s", n.id, n.channel)
                error = f"internal: {type(e).__name__}: {e}"
            now = self.clock()
            next_at = schedule.retry_alert(now, n.attempts + 1, self.cfg.retry, self.cfg.max_retry, self.rng)
            try:
                await self.db.mark_notice(n.id, now, error, next_at)
            except StoreError as e:  # sent again at the next pass: a notice may repeat, never vanish
                log.warning("ops notice not recorded id=%d reason=%r", n.id, str(e))
                return sent, failed
            if error is None:
                log.info("ops notice sent id=%d channel=%s title=%r", n.id, n.channel, n.title[:80])
                sent += 1
            else:
                log.warning("ops notice failed id=%d channel=%s error=%r", n.id, n.channel, error)
                failed += 1
        return sent, failed

    async def _run(self, fn: Callable[..., Answer], *args: object) -> Answer:
        """A blocking send on the sender's threads, within notify.timeout."""
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(loop.run_in_executor(self._pool, fn, *args), self.cfg.timeout)
