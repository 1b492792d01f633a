"""Jobs, schedules and sensors, and how a partition range becomes ONE run.

A range run carries the two range tags the CLI's `--partition-range` sets; every asset has
`BackfillPolicy.single_run()`, so each asset step sees the whole range at once (SPEC §5).
"""

import datetime as dt
import hashlib
import json

import dagster as dg

from retail_lakehouse.landing import SOURCE_COLUMNS, Drop, LandingZone
from retail_lakehouse.partitions import (
    RANGE_END_TAG,
    RANGE_START_TAG,
    ReversedRangeError,
    UnknownPartitionError,
    reversed_range_message,
    unknown_partition_message,
)

LAKEHOUSE_JOB = "lakehouse"

MEDALLION = dg.AssetSelection.groups("bronze", "silver", "gold")


def range_tags(first: dt.date, last: dt.date) -> dict[str, str]:
    """Tags that make a run cover the daily partitions first..last (inclusive)."""
    if last < first:
        raise ReversedRangeError(reversed_range_message(first.isoformat(), last.isoformat()))
    return {RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()}


def build_lakehouse_job(excluded_checks=()):
    """Every medallion asset and its checks, less the clock-driven ones that run on their own schedule."""
    keys = [key for c in excluded_checks for key in c.check_keys]
    return dg.define_asset_job(
        LAKEHOUSE_JOB,
        selection=MEDALLION - dg.AssetSelection.checks(*keys) if keys else MEDALLION,
        description="Every medallion asset for a day or a range of days, in one run.",
    )


def run_range(
    defs: dg.Definitions,
    first: dt.date,
    last: dt.date,
    selection: dg.AssetSelection | None = None,
    instance: dg.DagsterInstance | None = None,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    """Materialize `selection` (default: every medallion asset) for first..last in one run."""
    job = defs.resolve_job_def(LAKEHOUSE_JOB)
    # Refused before the run exists, as the CLI does: nothing is written, nothing is retried.
    tags = range_tags(first, last)
    if job.partitions_def is not None:
        for day in (first, last):
            if not job.partitions_def.has_partition_key(day.isoformat()):
                raise UnknownPartitionError(unknown_partition_message(job.partitions_def, day.isoformat()))
    keys = None
    if selection is not None:
        keys = list(selection.resolve(defs.resolve_asset_graph()))
    return job.execute_in_process(
        tags=tags, instance=instance, asset_selection=keys, raise_on_error=raise_on_error
    )


def late_window(day: dt.date, start: dt.date, late_days: int) -> tuple[dt.date, dt.date]:
    """The partitions a drop of `day` can change: returns and refunds reach back `late_days`."""
    return max(start, day - dt.timedelta(days=late_days)), day


def build_daily_schedule(job, start: dt.date, late_days: int) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="daily_lakehouse",
        cron_schedule="0 2 * * *",
        execution_timezone="UTC",
        job=job,
        description=(
            "02:00 UTC: yesterday's drops, and the late-data window of facts and aggregates they can "
            "change (the 30 days before), in one run."
        ),
    )
    def daily_lakehouse(context: dg.ScheduleEvaluationContext):
        yesterday = context.scheduled_execution_time.astimezone(dt.timezone.utc).date() - dt.timedelta(days=1)
        if yesterday < start:
            return dg.SkipReason(f"{yesterday} is before the first partition {start}")
        first, last = late_window(yesterday, start, late_days)
        return dg.RunRequest(run_key=f"daily-{yesterday}", tags=range_tags(first, last))

    return daily_lakehouse


def build_landing_sensor(job, start: dt.date, late_days: int) -> dg.SensorDefinition:
    @dg.sensor(
        name="landing_zone",
        job=job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=(
            "Requests one run covering every new or re-delivered CSV drop (and the late-data window "
            "before it). The cursor remembers each file's fingerprint, so an unchanged file is never "
            "processed twice and a corrected one always is."
        ),
    )
    def landing_zone(context: dg.SensorEvaluationContext, landing: LandingZone):
        seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        current: dict[str, str] = {}
        for source in SOURCE_COLUMNS:
            current.update(landing.fingerprints(source))
        changed = {path: fp for path, fp in current.items() if seen.get(path) != fp}
        days = sorted(d for d in (_business_date(p) for p in changed) if d is not None and d >= start)
        cursor = json.dumps({**seen, **current}, sort_keys=True)
        if not days:
            return dg.SensorResult(skip_reason="no new or changed drops", cursor=cursor)
        first, _ = late_window(days[0], start, late_days)
        digest = hashlib.sha256(json.dumps(sorted(changed.items())).encode()).hexdigest()[:16]
        request = dg.RunRequest(run_key=f"landing-{digest}", tags=range_tags(first, days[-1]))
        context.log.info(f"{len(changed)} new or changed drop(s) for {days[0]}..{days[-1]}")
        return dg.SensorResult(run_requests=[request], cursor=cursor)

    return landing_zone


def _business_date(path: str) -> dt.date | None:
    source, _, name = path.partition("/")
    drop = Drop.from_name(source, name)
    return drop.business_date if drop else None
