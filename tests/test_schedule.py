"""monitor.schedule: pure functions of their inputs, pinned with a seeded random source."""

from __future__ import annotations

import random

import pytest

from monitor import schedule

NOW = 1_790_000_000.0
SEEDS = range(200)


def test_after_success_jitter_within_ten_percent():
    delays = [schedule.after_success(NOW, 900, random.Random(s)) - NOW for s in SEEDS]

    assert all(810 <= d <= 990 for d in delays)
    # Jitter really spreads feeds out: not a constant, and both sides of the interval.
    assert min(delays) < 850 and max(delays) > 950


def test_same_seed_same_time():
    assert (schedule.after_success(NOW, 900, random.Random(7))
            == schedule.after_success(NOW, 900, random.Random(7)))


def test_without_rng_uses_the_module_random():
    delay = schedule.after_success(NOW, 100) - NOW

    assert 90 <= delay <= 110


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_after_error_backoff_doubles_then_is_capped(seed):
    interval, cap = 60, 3600

    delays = [schedule.after_error(NOW, interval, n, cap, random.Random(seed)) - NOW
              for n in range(1, 12)]

    # The same seed draws the same jitter factor, so the ratios are exact.
    factor = delays[0] / interval
    assert 0.9 <= factor <= 1.1
    expected = [min(cap, interval * 2 ** (n - 1)) * factor for n in range(1, 12)]
    assert delays == pytest.approx(expected)
    assert delays[1] == pytest.approx(2 * delays[0])
    assert delays[5] == pytest.approx(32 * delays[0])  # 1920 s, still under the cap
    assert delays[6:] == pytest.approx([cap * factor] * 5)  # 3840 s -> capped


def test_after_error_first_error_waits_one_interval():
    for seed in SEEDS:
        delay = schedule.after_error(NOW, 300, 1, 21600, random.Random(seed)) - NOW
        assert 270 <= delay <= 330
    # errors=0 (should not happen) behaves like the first error, never shorter.
    assert schedule.after_error(NOW, 300, 0, 21600, random.Random(1)) == \
        schedule.after_error(NOW, 300, 1, 21600, random.Random(1))


def test_after_error_capped_delay_keeps_jitter_bounds():
    for seed in SEEDS:
        delay = schedule.after_error(NOW, 900, 30, 21600, random.Random(seed)) - NOW
        assert 0.9 * 21600 <= delay <= 1.1 * 21600


def test_retry_alert_doubles_from_first_and_is_capped():
    delays = [schedule.retry_alert(NOW, n, 60.0, 3600.0, random.Random(3)) - NOW
              for n in range(1, 10)]

    factor = delays[0] / 60.0
    assert 0.9 <= factor <= 1.1
    assert delays == pytest.approx([min(3600.0, 60.0 * 2 ** (n - 1)) * factor
                                    for n in range(1, 10)])


@pytest.mark.parametrize("errors", [1, 2, 5, 20, 200])
@pytest.mark.parametrize("interval", [1, 60, 900, 86400])
def test_never_a_time_in_the_past(errors, interval):
    for seed in range(20):
        rng = random.Random(seed)
        assert schedule.after_success(NOW, interval, rng) > NOW
        assert schedule.after_error(NOW, interval, errors, 21600, rng) > NOW
        assert schedule.retry_alert(NOW, errors, 60.0, 3600.0, rng) > NOW


def test_backoff_survives_very_many_attempts():
    rng = random.Random(5)
    # An alert to a channel that was removed from the config fails for ever: at the
    # default max_retry of 3600 s, attempt 1025 comes after about six weeks.
    assert NOW < schedule.retry_alert(NOW, 1025, 60.0, 3600.0, rng) <= NOW + 3960
    assert NOW < schedule.after_error(NOW, 900.0, 1025, 21600.0, rng) <= NOW + 23760
