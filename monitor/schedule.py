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
    return now + _jitter(_backoff(interval, errors, cap), rng)


def retry_alert(now: float, attempts: int, first: float, cap: float,
                rng: random.Random | None = None) -> float:
    """Next attempt for an alert that failed ``attempts`` times (>= 1)."""
    return now + _jitter(_backoff(first, attempts, cap), rng)


def _backoff(base: float, failures: int, cap: float) -> float:
    """base * 2**(failures-1), capped. The exponent is bounded first: a float power of two
    overflows past 2**1023, i.e. after some weeks of hourly failures."""
    return min(cap, base * 2.0 ** min(max(0, failures - 1), 60))
