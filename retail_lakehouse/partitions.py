"""Daily partitions and the one function that turns a partition window into dates.

Partition keys reach Delta predicates, so they are validated here and nowhere else: a predicate is
only ever built from `datetime.date` objects, never from a raw string.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg


def daily_partitions(start_date: dt.date) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=start_date.isoformat(), timezone="UTC")


def window_dates(window: dg.TimeWindow) -> tuple[dt.date, dt.date]:
    """The [first, end) dates of a daily time window; refuses anything but whole UTC days."""
    start, end = window.start, window.end
    for bound in (start, end):
        if (bound.hour, bound.minute, bound.second, bound.microsecond) != (0, 0, 0, 0):
            raise ValueError(f"partition window {start}..{end} is not made of whole days")
        if bound.utcoffset() not in (None, dt.timedelta(0)):
            raise ValueError(f"partition window {start}..{end} is not in UTC")
    if end <= start:
        raise ValueError(f"empty partition window {start}..{end}")
    return start.date(), end.date()


def days_in(first: dt.date, end: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((end - first).days)]


def parse_partition_key(key: str) -> dt.date:
    """A daily partition key (YYYY-MM-DD) as a date, with a message that names the bad key."""
    try:
        return dt.date.fromisoformat(key)
    except (TypeError, ValueError):
        raise ValueError(f"partition key {key!r} is not a date like 2026-09-01") from None
