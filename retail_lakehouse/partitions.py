"""Daily partitions and the one function that turns a partition window into dates.

Partition keys reach Delta predicates, so they are validated here and nowhere else: a predicate is
only ever built from `datetime.date` objects, never from a raw string.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import dagster as dg

from retail_lakehouse.settings import InvocationError

# The tags `--partition-range A...B` (and `orchestration.range_tags`) put on a run.
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


class UnknownPartitionError(InvocationError):
    """A day outside the partitions; the message names the days that exist."""


class ReversedRangeError(InvocationError):
    """A range whose last day comes before its first."""


class DailyPartitions(dg.DailyPartitionsDefinition):
    """Daily UTC partitions that name the days that exist when asked for one that does not.

    Dagster's CLI checks `--partition` and both ends of `--partition-range` with
    `validate_partition_key` before it creates a run, and answers an unknown key with "must have a
    PartitionsDefinition containing the passed partition key" and a traceback. Raising an
    `InvocationError` here instead makes the CLI print one line with the valid span. The method is
    not a public extension point: should a release stop calling it, the CLI still refuses the key
    before any run, with its own message, and test_invocation says so.
    """

    def validate_partition_key(self, partition_key: str, context) -> None:
        try:
            super().validate_partition_key(partition_key, context)
        except dg.DagsterUnknownPartitionError:
            raise UnknownPartitionError(unknown_partition_message(self, partition_key)) from None


def daily_partitions(start_date: dt.date) -> DailyPartitions:
    return DailyPartitions(start_date=start_date.isoformat(), timezone="UTC")


def partition_span(partitions_def: dg.PartitionsDefinition) -> tuple[str, str] | None:
    """The first and last partition keys, or None while the first day has not ended yet."""
    keys = partitions_def.get_partition_keys()
    return (keys[0], keys[-1]) if keys else None


def unknown_partition_message(partitions_def: dg.PartitionsDefinition, key: str) -> str:
    span = partition_span(partitions_def)
    if span is None:
        start = getattr(partitions_def, "start", None)
        first = start.date().isoformat() if isinstance(start, dt.datetime) else "the start date"
        return (
            f"no daily partition {key}: there are no partitions yet, the first ({first}, "
            "RETAIL_LAKEHOUSE_START_DATE) exists once that day has ended (UTC)"
        )
    what = f"no daily partition {key}" if _is_date(key) else f"partition key {key!r} is not a date like 2026-09-01"
    rolling = " (yesterday, UTC)" if getattr(partitions_def, "end", None) is None else ""
    return f"{what}: partitions run from {span[0]} to {span[1]}{rolling}; pick days in that range"


def reversed_range_message(first: str, last: str) -> str:
    return (
        f"partition range {first}...{last} ends before it starts: give the earlier day first, "
        f"--partition-range {last}...{first}"
    )


def check_range_tags(tags: Mapping[str, str]) -> None:
    """Refuses a run whose range tags are reversed or not dates, before any step runs.

    `dagster asset materialize --partition-range B...A` checks that both days exist but not their
    order; a resource's setup can call this so such a run fails once, up front, instead of in
    every step.
    """
    first, last = tags.get(RANGE_START_TAG), tags.get(RANGE_END_TAG)
    if first is None or last is None:
        return
    start, end = parse_partition_key(first), parse_partition_key(last)
    if end < start:
        raise dg.Failure(description=reversed_range_message(first, last), allow_retries=False)


def window_dates(window: dg.TimeWindow) -> tuple[dt.date, dt.date]:
    """The [first, end) dates of a daily time window; refuses anything but whole UTC days.

    A reversed `--partition-range` reaches the steps as a window that ends before it starts; the
    Failure says so and, unlike any other exception, is not retried by the retry policy: running
    the same bad range again cannot succeed.
    """
    start, end = window.start, window.end
    for bound in (start, end):
        if (bound.hour, bound.minute, bound.second, bound.microsecond) != (0, 0, 0, 0):
            raise ValueError(f"partition window {start}..{end} is not made of whole days")
        if bound.utcoffset() not in (None, dt.timedelta(0)):
            raise ValueError(f"partition window {start}..{end} is not in UTC")
    if end <= start:
        last = end.date() - dt.timedelta(days=1)
        raise dg.Failure(description=reversed_range_message(start.date().isoformat(), last.isoformat()), allow_retries=False)
    return start.date(), end.date()


def days_in(first: dt.date, end: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((end - first).days)]


def parse_partition_key(key: str) -> dt.date:
    """A daily partition key (YYYY-MM-DD) as a date, with a message that names the bad key."""
    try:
        return dt.date.fromisoformat(key)
    except (TypeError, ValueError):
        raise ValueError(f"partition key {key!r} is not a date like 2026-09-01") from None


def _is_date(key: str) -> bool:
    try:
        dt.date.fromisoformat(key)
    except (TypeError, ValueError):
        return False
    return True
