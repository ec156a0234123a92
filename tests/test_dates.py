"""monitor.dates: every date/time parse, one rule for a value without a zone (UTC). Table-driven:
each row is a text as feeds, HTTP headers, our database or a user write it, and the moment it is."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from datetime import time as clock_time

import pytest

from monitor import dates, noise, render, schedule

T = datetime(2026, 11, 1, 8, 0, tzinfo=UTC).timestamp()  # 2026-11-01T08:00:00Z

# text -> the Unix time it is (None: not a date)
TABLE = [
    # ISO 8601 / RFC 3339: Z, an offset, none (UTC), fractions, a bare date, the basic form
    ("2026-11-01T08:00:00Z", T), ("2026-11-01T08:00:00+00:00", T), ("2026-11-01T10:00:00+02:00", T),
    ("2026-11-01T03:00:00-05:00", T), ("2026-11-01T08:00:00", T), ("2026-11-01 08:00", T),
    ("  2026-11-01T08:00:00.250Z ", T + 0.25), ("2026-11-01", T - 8 * 3600), ("20261101T080000Z", T),
    ("2026-11-01T13:45:00+05:45", T),  # Nepal: a quarter-hour offset
    # RFC 5322 / RFC 9110 HTTP-date: the three forms; -0000 and asctime carry no zone: UTC
    ("Sun, 01 Nov 2026 08:00:00 GMT", T), ("Sunday, 01-Nov-26 08:00:00 GMT", T),
    ("Sun Nov  1 08:00:00 2026", T), ("Sun, 01 Nov 2026 08:00:00 -0000", T),
    ("Sun, 01 Nov 2026 09:00:00 +0100", T), ("Sun, 01 Nov 2026 03:00:00 EST", T),
    ("Sun, 01 Nov 2026 08:00:00 CEST", T),  # a zone name Python does not know is no zone: UTC
    # DST: the same wall clock on either side of Europe's switch (2026-10-25) is another UTC hour
    ("2026-10-24T10:00:00+02:00", T - 8 * 86400), ("2026-10-26T09:00:00+01:00", T - 6 * 86400),
    # far past and far future, while they can be placed in UTC
    ("1900-01-01T00:00:00Z", -2208988800.0), ("9999-12-31T23:59:59Z", 253402300799.0),
    ("0001-01-01T00:00:00+01:00", None), ("9999-12-31T23:30:00-01:00", None),  # beyond year 1 / 9999
    # garbage
    ("", None), ("   ", None), ("yesterday", None), ("1700000000", None), ("2026-13-45T00:00:00Z", None),
    ("2026-11-01T24:00:00Z", None), ("Sun, 32 Nov 2026 08:00:00 GMT", None), ("\x00", None),
]


@pytest.mark.parametrize("text,ts", TABLE, ids=[repr(t) for t, _ in TABLE])
def test_every_text_is_the_moment_it_names(text, ts):
    assert dates.timestamp(text) == ts
    expected = None if ts is None else datetime.fromtimestamp(ts, UTC).replace(microsecond=0)
    assert dates.stamp(text) == (expected.isoformat()[:19] + "Z" if expected else None)


@pytest.mark.parametrize("value,ts", [
    (T, T), (int(T), T), (time.gmtime(T), T), (datetime(2026, 11, 1, 8), T),  # a naive datetime: UTC
    (datetime(2026, 11, 1, 9, tzinfo=timezone(timedelta(hours=1))), T),
    (time.struct_time((2026, 11, 1, 7, 59, 60, 0, 305, 0)), T),  # a leap second rolls over
    (None, None), (True, None), ([2026], None), (1e20, None), (float("nan"), None),
])
def test_other_kinds_of_value(value, ts):
    assert dates.timestamp(value) == ts


@pytest.mark.parametrize("value,iso", [
    ("2026-11-01T08:00:00Z", "2026-11-01T08:00:00Z"), ("2026-11-01T10:00:00+02:00", "2026-11-01T10:00:00+02:00"),
    ("2026-11-01T08:00:00", "2026-11-01T08:00:00Z"), ("Sun, 01 Nov 2026 03:00:00 EST", "2026-11-01T03:00:00-05:00"),
    (T, "2026-11-01T08:00:00Z"), (0, None), ("", None), (None, None), ("0001-01-01T00:00:00+01:00", None),
])
def test_iso_keeps_the_zone_it_was_given(value, iso):
    assert dates.iso(value) == iso


@pytest.mark.parametrize("value,text", [
    ("2026-11-01T08:00:00Z", "2026-11-01 08:00 UTC"),
    ("2026-11-01T10:00:00+02:00", "2026-11-01 08:00 UTC"),  # in UTC, as it says, not 10:00 "UTC"
    ("2026-11-01T08:00:00", "2026-11-01 08:00 UTC"), ("0099-01-01T00:00:00Z", "0099-01-01 00:00 UTC"),
    ("soon", "soon"), (None, ""),
])
def test_readable_is_in_utc(value, text):
    assert dates.readable(value) == text
    assert render.when(value) == text  # the template filter is this one


def test_every_caller_follows_the_one_rule_for_a_value_without_a_zone():
    """Before issue 15 schedule dropped '2026-11-01T08:00:00' while parse, render and rule
    filters read it as UTC: one text, two meanings."""
    naive, now = "2026-11-01T08:00:00", T + 600
    assert schedule.recent(naive, now, 3600) and schedule.newest([naive], now) == T
    assert schedule.learn_cadence([naive, "2026-11-01T07:00:00", "2026-11-01T06:00:00Z"],
                                  previous=None, last_new_at=None, new=0, now=now) == 3600
    assert schedule.retry_after("Sun Nov  1 08:10:00 2026", T) == 600  # RFC 9110's asctime form
    assert render.iso(naive) == "2026-11-01T08:00:00Z" and dates.stamp(naive) == "2026-11-01T08:00:00Z"


@pytest.mark.parametrize("ts,now,text", [
    (None, T, "never"), (0, T, "now"), (T - 45, T, "45s ago"), (T - 600, T, "10m ago"),
    (T - 5 * 3600, T, "5h ago"), (T - 3 * 86400, T, "3d ago"), (T + 7200, T, "in 2h"),
])
def test_relative_times(ts, now, text):
    assert dates.ago(ts, now) == text


@pytest.mark.parametrize("text,seconds", [("14d", 14 * 86400), ("90s", 90), ("1.5h", 5400), (" 2 w ", 1209600)])
def test_durations(text, seconds):
    assert dates.duration(text) == seconds


@pytest.mark.parametrize("text", ["", "14", "d", "14y", "-1d", "1e3s", "14 days"])
def test_a_malformed_duration_is_named(text):
    with pytest.raises(ValueError, match="14d"):
        dates.duration(text)


@pytest.mark.parametrize("text,ok", [("22:00", clock_time(22)), ("07:05", clock_time(7, 5)), ("24:00", None),
                                     ("7:00", None), ("22:60", None), ("", None)])
def test_times_of_day(text, ok):
    if ok is None:
        with pytest.raises(ValueError):
            dates.clock(text)
    else:
        assert dates.clock(text) == ok


@pytest.mark.parametrize("utc,zone,wall", [
    ("2026-03-29T00:30:00Z", "Europe/Berlin", clock_time(1, 30)),  # CET, the night of the switch
    ("2026-03-29T01:30:00Z", "Europe/Berlin", clock_time(3, 30)),  # CEST: 02:xx never happened
    ("2026-10-25T00:30:00Z", "Europe/Berlin", clock_time(2, 30)),  # CEST, the first 02:30
    ("2026-10-25T01:30:00Z", "Europe/Berlin", clock_time(2, 30)),  # CET, the second 02:30
    ("2026-11-01T08:00:00Z", "America/New_York", clock_time(3)),  # EST from that morning
    ("2026-11-01T05:30:00Z", "America/New_York", clock_time(1, 30)),  # EDT, before the switch
])
def test_wall_clock_follows_daylight_saving_time(utc, zone, wall):
    ts = dates.timestamp(utc)
    assert dates.wall_clock(ts, zone) == wall
    quiet = noise.policy(quiet_hours="01:00-02:00", timezone=zone)
    assert noise.quiet(quiet, ts) == (clock_time(1) <= wall < clock_time(2))


@pytest.mark.parametrize("text", ["2026-11-01T08:00:00Z", "Sun, 01 Nov 2026 09:00:00 +0100", "2026-11-01",
                                  "not a date", "   ", "0001-01-01T00:00:00+01:00"])
def test_a_text_read_again_is_the_same_moment(text):
    """timestamp remembers what a text means (a poll reads each entry's date three times): a
    repeat answers what the first reading did, which is what reading it afresh gives."""
    fresh = dates.utc(text)
    want = fresh.timestamp() if fresh is not None else None
    assert dates.timestamp(text) == want
    assert dates.timestamp(text) == want
    assert dates.timestamp(str(text)) == want  # another object with the same text
