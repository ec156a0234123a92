"""monitor.schedule: pure functions of their inputs, pinned with a seeded random source."""

from __future__ import annotations

import email.utils
import random
from datetime import UTC, datetime

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


def test_retry_alert_bound_doubles_from_first_and_is_capped():
    """Full jitter: each delay lies between the first delay and a bound that doubles per
    attempt up to the cap, and the draws reach up to that bound."""
    rng = random.Random(3)
    for n in range(1, 10):
        bound = min(3600.0, 60.0 * 2 ** (n - 1))
        delays = [schedule.retry_alert(NOW, n, 60.0, 3600.0, rng) - NOW for _ in range(300)]
        assert all(60.0 <= d <= bound for d in delays), n
        assert max(delays) >= 60.0 + 0.9 * (bound - 60.0), n


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


# --- interval_for -------------------------------------------------------------------------

def interval(cadence: float | None, *, pinned: bool = False, adaptive: bool = True) -> float:
    return schedule.interval_for(900, pinned=pinned, cadence=cadence, adaptive=adaptive,
                                 floor=300, ceiling=3600)


def test_interval_for_pinned_wins_over_a_learned_cadence():
    assert interval(1200, pinned=True) == 900
    assert interval(100_000, pinned=True) == 900


def test_interval_for_adaptive_off_uses_the_configured_interval():
    assert interval(1200, adaptive=False) == 900


def test_interval_for_without_cadence_uses_the_configured_interval():
    assert interval(None) == 900


def test_interval_for_half_the_cadence_clamped_to_floor_and_ceiling():
    assert interval(1200) == 600  # cadence / 2, inside [300, 3600]
    assert interval(7200) == 3600  # exactly the ceiling
    assert interval(400) == 300  # 200 -> floor
    assert interval(10) == 300
    assert interval(86400) == 3600  # 43200 -> ceiling


# --- next_poll ----------------------------------------------------------------------------

def test_next_poll_without_hint_is_the_jittered_interval():
    for seed in SEEDS:
        delay = schedule.next_poll(NOW, 900, rng=random.Random(seed)) - NOW
        assert 810 <= delay <= 990


def test_next_poll_never_earlier_than_the_hint():
    for seed in SEEDS:
        assert schedule.next_poll(NOW, 900, hint=5000, rng=random.Random(seed)) == NOW + 5000


def test_next_poll_small_hint_does_not_shorten_the_interval():
    for seed in SEEDS:
        with_hint = schedule.next_poll(NOW, 900, hint=60, rng=random.Random(seed))
        assert with_hint == schedule.next_poll(NOW, 900, rng=random.Random(seed))
        assert with_hint - NOW >= 810


def test_next_poll_hint_is_capped_at_max_hint():
    year = 365 * 86400
    for seed in SEEDS:
        assert schedule.next_poll(NOW, 900, hint=year, max_hint=7200, rng=random.Random(seed)) == NOW + 7200
    # The default cap is six hours.
    assert schedule.next_poll(NOW, 900, hint=year, rng=random.Random(1)) == NOW + 21600
    # A cap below the interval does not shorten the interval either.
    delay = schedule.next_poll(NOW, 900, hint=year, max_hint=60, rng=random.Random(2)) - NOW
    assert 810 <= delay <= 990


# --- after_error with Retry-After -----------------------------------------------------------

def test_after_error_honours_a_retry_after_longer_than_the_backoff():
    for seed in SEEDS:
        # First error: about 60 s of backoff; the server asked for 1800 s.
        at = schedule.after_error(NOW, 60, 1, 3600, random.Random(seed), retry_after=1800)
        assert at == NOW + 1800


def test_after_error_caps_retry_after_at_cap():
    for seed in SEEDS:
        at = schedule.after_error(NOW, 60, 1, 3600, random.Random(seed), retry_after=10 * 86400)
        assert at == NOW + 3600


def test_after_error_backoff_still_applies_when_retry_after_is_small():
    for seed in SEEDS:
        plain = schedule.after_error(NOW, 600, 3, 21600, random.Random(seed))
        hinted = schedule.after_error(NOW, 600, 3, 21600, random.Random(seed), retry_after=5)
        assert hinted == plain
        assert 0.9 * 2400 <= hinted - NOW <= 1.1 * 2400


def test_after_error_retry_after_zero_is_not_a_busy_loop():
    for seed in SEEDS:
        delay = schedule.after_error(NOW, 300, 1, 21600, random.Random(seed), retry_after=0) - NOW
        assert 270 <= delay <= 330


# --- server_hint --------------------------------------------------------------------------

DATE = "Wed, 21 Oct 2015 07:28:00 GMT"


def test_server_hint_max_age():
    assert schedule.server_hint({"cache-control": "max-age=600"}, None, NOW) == 600
    assert schedule.server_hint({"cache-control": "public, max-age=1200"}, None, NOW) == 1200
    assert schedule.server_hint({"cache-control": "private,max-age=30,must-revalidate"}, None, NOW) == 30


def test_server_hint_s_maxage():
    assert schedule.server_hint({"cache-control": "s-maxage=600"}, None, NOW) == 600
    assert schedule.server_hint({"cache-control": "public, s-maxage=600, max-age=60"}, None, NOW) == 600


def test_server_hint_quoted_max_age():
    assert schedule.server_hint({"cache-control": 'max-age="900"'}, None, NOW) == 900


@pytest.mark.parametrize("cc", ["no-cache, max-age=600", "max-age=600, no-store", "No-Cache"])
def test_server_hint_no_cache_and_no_store_are_not_hints(cc):
    headers = {"cache-control": cc, "expires": "Wed, 21 Oct 2015 08:28:00 GMT", "date": DATE}

    assert schedule.server_hint(headers, None, NOW) is None
    # A <ttl> still counts: no-cache is about HTTP caches, not the feed's own advice.
    assert schedule.server_hint(headers, 1800, NOW) == 1800


def test_server_hint_expires_relative_to_the_response_date():
    headers = {"expires": "Wed, 21 Oct 2015 08:28:00 GMT", "date": DATE}

    # The Date is ten years before NOW: clock skew does not matter, Expires - Date does.
    assert schedule.server_hint(headers, None, NOW) == 3600


def test_server_hint_expires_without_date_is_relative_to_now():
    expires = email.utils.format_datetime(datetime.fromtimestamp(NOW + 1200, UTC), usegmt=True)

    assert schedule.server_hint({"expires": expires}, None, NOW) == pytest.approx(1200)


def test_server_hint_expires_in_the_past_is_zero():
    headers = {"expires": "Wed, 21 Oct 2015 06:28:00 GMT", "date": DATE}

    assert schedule.server_hint(headers, None, NOW) == 0


@pytest.mark.parametrize("expires", ["0", "-1", "never", "", "Wed, 32 Foo 2015"])
def test_server_hint_unparseable_expires_is_none(expires):
    assert schedule.server_hint({"expires": expires, "date": DATE}, None, NOW) is None


def test_server_hint_ttl_and_max_age_give_the_larger():
    headers = {"cache-control": "max-age=600"}

    assert schedule.server_hint(headers, 3600, NOW) == 3600
    assert schedule.server_hint(headers, 60, NOW) == 600
    assert schedule.server_hint({}, 900, NOW) == 900


def test_server_hint_nothing_is_none():
    assert schedule.server_hint({}, None, NOW) is None
    assert schedule.server_hint({"cache-control": "public", "date": DATE}, None, NOW) is None


# --- learn_cadence ------------------------------------------------------------------------

def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def cadence(published, *, previous=None, last_new_at=None, new=0, now=NOW):
    return schedule.learn_cadence(published, previous=previous, last_new_at=last_new_at, new=new, now=now)


def test_learn_cadence_from_dates_is_span_over_count():
    # Three entries over two hours, out of order: 2 gaps -> 3600 s.
    dates = [iso(NOW - 7200), iso(NOW), iso(NOW - 1000)]

    assert cadence(dates) == 3600
    # The observation fallback is not used when the dates suffice.
    assert cadence(dates, previous=60, last_new_at=NOW - 10, new=5) == 3600


def test_learn_cadence_uses_only_the_newest_fifty_dated_entries():
    recent = [iso(NOW - 600 * i) for i in range(50)]  # every 10 min
    ancient = [iso(NOW - 86400 * 365 - 86400 * i) for i in range(30)]  # daily, a year ago

    assert cadence(ancient + recent) == pytest.approx(600)
    assert cadence(recent[:49] + ancient[:1]) != pytest.approx(600)  # control: 50 entries all count


def test_learn_cadence_ignores_dates_more_than_an_hour_in_the_future():
    base = [iso(NOW - 3600 * i) for i in range(4)]  # hourly: 3 gaps over 3 h

    assert cadence([*base, iso(NOW + 7200), iso(NOW + 86400 * 30)]) == pytest.approx(3600)
    # Within the hour counts (an entry dated a little ahead of our clock).
    assert cadence([*base, iso(NOW + 1800)]) == pytest.approx((3 * 3600 + 1800) / 4)


def test_learn_cadence_ignores_unparseable_and_future_dates():
    dates = [iso(NOW - 1200), None, "", "yesterday", "2026-13-45T00:00:00+00:00",
             "2026-11-01T08:00:00",  # no zone: UTC (monitor.dates), six weeks after NOW: ignored
             iso(NOW - 600), iso(NOW)]

    assert cadence(dates) == pytest.approx(600)


def test_learn_cadence_all_equal_dates_fall_back_to_observation():
    same = [iso(NOW - 500)] * 5

    assert cadence(same) is None
    assert cadence(same, previous=1234) == 1234
    assert cadence(same, last_new_at=NOW - 3000, new=3) == pytest.approx(1000)


def test_learn_cadence_too_few_dates_fall_back_to_observation():
    dates = [iso(NOW - 100), iso(NOW)]

    assert cadence(dates, last_new_at=NOW - 7200, new=2) == pytest.approx(3600)


def test_learn_cadence_first_observation_is_gap_over_new():
    assert cadence([], last_new_at=NOW - 6000, new=4) == pytest.approx(1500)
    assert cadence([None, None], last_new_at=NOW - 900, new=1) == pytest.approx(900)


def test_learn_cadence_second_observation_blends_three_to_seven():
    assert cadence([], previous=1000, last_new_at=NOW - 4000, new=1) == pytest.approx(0.3 * 4000 + 0.7 * 1000)
    assert cadence([], previous=1000, last_new_at=NOW - 4000, new=1) == pytest.approx(1900)


def test_learn_cadence_without_new_entries_keeps_the_previous():
    assert cadence([], previous=777, last_new_at=NOW - 4000, new=0) == 777
    assert cadence([], previous=None, last_new_at=NOW - 4000, new=0) is None
    # Nothing to measure against: no last_new_at, or a last_new_at not before now.
    assert cadence([], previous=777, last_new_at=None, new=3) == 777
    assert cadence([], previous=777, last_new_at=NOW, new=3) == 777
    assert cadence([], previous=777, last_new_at=NOW + 60, new=3) == 777


# --- newest -------------------------------------------------------------------------------

def test_newest_is_the_latest_date():
    assert schedule.newest([iso(NOW - 600), iso(NOW - 60), None, "bad"], NOW) == pytest.approx(NOW - 60)


def test_newest_is_never_in_the_future():
    # A little ahead of our clock: clamped to now.
    assert schedule.newest([iso(NOW - 600), iso(NOW + 1800)], NOW) == NOW
    # Far ahead: ignored.
    assert schedule.newest([iso(NOW - 600), iso(NOW + 7200)], NOW) == pytest.approx(NOW - 600)


def test_newest_without_usable_dates_is_none():
    assert schedule.newest([], NOW) is None
    assert schedule.newest([None, "", "soon", "2026-11-01T08:00:00", iso(NOW + 86400)], NOW) is None  # future


# --- status -------------------------------------------------------------------------------

def test_status_inactive_wins_over_everything():
    assert schedule.status(active=False, gone=True, error_count=3, baselined=False, now=NOW) == "inactive"


def test_status_gone_wins_over_failing():
    assert schedule.status(gone=True, error_count=3, baselined=False, now=NOW) == "gone"


def test_status_failing_wins_over_new_and_silent():
    assert schedule.status(error_count=1, baselined=False, now=NOW) == "failing"
    assert schedule.status(error_count=1, cadence=60, last_new_at=NOW - 10 * 86400, now=NOW) == "failing"


def test_status_new_until_baselined():
    assert schedule.status(baselined=False, now=NOW) == "new"
    assert schedule.status(baselined=False, cadence=60, last_new_at=NOW - 10 * 86400, now=NOW) == "new"


def test_status_silent_after_ten_cadences():
    # cadence 2 h: silent after 20 h (over the 12 h minimum).
    assert schedule.status(cadence=7200, last_new_at=NOW - 72001, now=NOW) == "silent"


def test_status_exactly_at_the_boundary_is_still_ok():
    assert schedule.status(cadence=7200, last_new_at=NOW - 72000, now=NOW) == "ok"
    assert schedule.status(cadence=7200, last_new_at=NOW - 72000, now=NOW, silent_after=5) == "silent"


def test_status_ok():
    assert schedule.status(now=NOW) == "ok"
    assert schedule.status(cadence=7200, last_new_at=NOW - 3600, now=NOW) == "ok"
    # Without a cadence or a last new entry there is nothing to be silent against.
    assert schedule.status(cadence=None, last_new_at=NOW - 365 * 86400, now=NOW) == "ok"
    assert schedule.status(cadence=60, last_new_at=None, now=NOW) == "ok"


def test_status_silent_min_dominates_a_short_cadence():
    # cadence 10 min x 10 = 100 min, but the minimum is 12 h.
    assert schedule.status(cadence=600, last_new_at=NOW - 6001, now=NOW) == "ok"
    assert schedule.status(cadence=600, last_new_at=NOW - 43200, now=NOW) == "ok"
    assert schedule.status(cadence=600, last_new_at=NOW - 43201, now=NOW) == "silent"
    assert schedule.status(cadence=600, last_new_at=NOW - 6001, now=NOW, silent_min=6000) == "silent"
