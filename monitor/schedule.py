"""When to poll a feed next and when to retry an alert. Pure functions of their inputs (the
random source is a parameter), so tests can pin them."""

from __future__ import annotations

import random

JITTER = 0.1  # +-10 %: feeds added together drift apart instead of polling in lock-step


def _jitter(seconds: float, rng: random.Random | None) -> float:
    r = rng or random
    return seconds * r.uniform(1 - JITTER, 1 + JITTER)


def after_success(now: float, interval: float, rng: random.Random | None = None) -> float:
    return now + _jitter(interval, rng)


def after_error(now: float, interval: float, errors: int, cap: float,
                rng: random.Random | None = None) -> float:
    """Exponential backoff: one interval after the first error, doubling up to ``cap``;
    polling never stops for good."""
    delay = min(cap, interval * 2 ** max(0, errors - 1))
    return now + _jitter(delay, rng)


def retry_alert(now: float, attempts: int, first: float, cap: float,
                rng: random.Random | None = None) -> float:
    """Next attempt for an alert that failed ``attempts`` times (>= 1)."""
    return now + _jitter(min(cap, first * 2 ** max(0, attempts - 1)), rng)
