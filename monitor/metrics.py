"""Prometheus metrics (prometheus-client): counters the daemon updates as it works, and gauges
read from the database's last snapshot (taken every few seconds off the event loop), so they
are right after a restart and a scrape never waits on the database.

Counted in process: polls by outcome, new entries, alerts queued, fetch latency, ticks,
reloads. From the snapshot: feeds by health, outbox alerts by state and channel, outbox depth,
ops notices by state, stored matches by rule, the team's verdicts (``monitor_feedback_total``),
reported misses (``monitor_misses_reported``), seconds since the last tick. The process
collector adds resident memory, CPU time and open file descriptors (``process_*``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from . import schedule
from .store import Snapshot

log = logging.getLogger(__name__)
FETCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)  # process_resident_memory_bytes, fds, CPU
        r = self.registry
        self.polls = Counter("monitor_polls", "Feed polls by outcome (ok, baseline, not-modified, error)",
                             ["outcome"], registry=r)
        self.new_entries = Counter("monitor_new_entries", "Entries seen for the first time", registry=r)
        self.alerts_queued = Counter("monitor_alerts_queued", "Alerts written to the outbox by polls",
                                     registry=r)
        self.fetch_seconds = Histogram("monitor_fetch_seconds", "HTTP request latency, feeds and pages",
                                       ["kind"], buckets=FETCH_BUCKETS, registry=r)
        self.ticks = Counter("monitor_ticks", "Scheduler ticks", registry=r)
        self.reloads = Counter("monitor_reloads", "SIGHUP reloads by result (ok, failed)", ["result"],
                               registry=r)
        self.snapshot: Snapshot | None = None  # the last one the database answered
        self.database_up = False
        self.last_tick: float | None = None  # time.time() of the last tick
        r.register(_StoreCollector(self))

    def polled(self, outcome: Any) -> None:
        """One finished poll (a ``pipeline.Outcome``: status, new, alerts)."""
        self.polls.labels(outcome.status).inc()
        if outcome.new:
            self.new_entries.inc(outcome.new)
        if outcome.alerts:
            self.alerts_queued.inc(outcome.alerts)

    def fetched(self, kind: str, seconds: float) -> None:
        self.fetch_seconds.labels(kind).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _StoreCollector(Collector):
    """Gauges from the last database snapshot (``Service.refresh`` takes one every few seconds
    on the database thread): a scrape never waits on SQLite."""

    def __init__(self, metrics: Metrics):
        self.m = metrics

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("monitor_database_up", "1 when the database answered its last snapshot")
        snap = self.m.snapshot
        up.add_metric([], 1 if snap is not None and self.m.database_up else 0)
        yield up
        if snap is not None:
            yield from self._from(snap)

    def _from(self, snap: Snapshot) -> Iterator[Metric]:
        now = time.time()
        feeds = GaugeMetricFamily("monitor_feeds", "Feeds by health status", labels=["status"])
        for status in schedule.HEALTH:
            feeds.add_metric([status], snap.health.get(status, 0))
        yield feeds
        alerts = GaugeMetricFamily("monitor_alerts", "Alerts in the outbox by state and channel",
                                   labels=["state", "channel"])
        depth = 0
        for state, channel, n in snap.outbox:
            alerts.add_metric([state, channel], n)
            depth += n if state == "pending" else 0
        yield alerts
        yield GaugeMetricFamily("monitor_outbox_depth", "Alerts waiting to be delivered", value=depth)
        notices = GaugeMetricFamily("monitor_notices", "Ops notices by state", labels=["state"])
        for state, n in sorted(snap.notices.items()):
            notices.add_metric([state], n)
        yield notices
        matches = GaugeMetricFamily("monitor_matches", "Stored matches by rule", labels=["rule"])
        for rule, n in sorted(snap.matches.items()):
            matches.add_metric([rule], n)
        yield matches
        # A counter read from the database: every verdict ever given, replaced ones too, so it
        # only grows and survives restarts; it counts the CLI's verdicts as well as the links'.
        feedback = CounterMetricFamily("monitor_feedback", "Team verdicts given on alerts (issue 17)",
                                       labels=["verdict"])
        for verdict in ("relevant", "not"):
            feedback.add_metric([verdict], snap.feedback.get(verdict, 0))
        yield feedback
        misses = GaugeMetricFamily("monitor_misses_reported", "Stories the team reported a rule should have "
                                   "matched, by rule (issue 17)", labels=["rule"])
        for rule, n in sorted(snap.misses.items()):
            misses.add_metric([rule], n)
        yield misses
        if snap.cluster:  # PostgreSQL: the work queue every node shares (monitor/cluster.py)
            jobs = GaugeMetricFamily("monitor_cluster_jobs", "Poll jobs in the cluster's work queue by state",
                                     labels=["state"])
            for state in ("todo", "doing", "failed"):
                jobs.add_metric([state], snap.cluster.get(state, 0))
            yield jobs
            yield GaugeMetricFamily("monitor_cluster_workers", "Nodes whose work queue worker beat recently",
                                    value=snap.cluster.get("workers", 0))
        if self.m.last_tick is not None:
            yield GaugeMetricFamily("monitor_last_tick_age_seconds", "Seconds since the scheduler last ticked",
                                    value=max(0.0, now - self.m.last_tick))
