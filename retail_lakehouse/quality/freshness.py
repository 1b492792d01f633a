"""Freshness (seed 000 §8.2, §3.2): policies the daemon evaluates, and a partition-lag check.

`FreshnessPolicy` looks at the newest materialization of ANY partition, so a backfill of an old day
makes an asset look fresh; the partition check looks at the newest partition *value* instead.
"""

import datetime as dt
from collections.abc import Callable

import dagster as dg

from retail_lakehouse.quality import policy as p
from retail_lakehouse.quality.checks import partition_freshness_result
from retail_lakehouse.storage import Lakehouse

FRESHNESS_JOB = "freshness_checks"


def freshness_policy() -> dg.FreshnessPolicy:
    return dg.FreshnessPolicy.time_window(fail_window=p.FRESHNESS_FAIL, warn_window=p.FRESHNESS_WARN)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def build_freshness_checks(partition_columns: dict[tuple[str, ...], str], now: Callable[[], dt.datetime] = _utcnow) -> list[dg.AssetChecksDefinition]:
    """One partition-lag check per fact/aggregate; `now` is injectable so tests can move the clock."""
    return [_freshness_check(path, partition_columns[path], now) for path in p.FRESHNESS_CHECKED]


def _freshness_check(path: tuple[str, ...], column: str, now: Callable[[], dt.datetime]) -> dg.AssetChecksDefinition:
    key = dg.AssetKey(list(path))
    declared = p.check(path, p.PARTITION_FRESHNESS)

    @dg.asset_check(asset=key, name=declared.name, blocking=declared.blocking, description=declared.description)
    def _fresh(lake: Lakehouse) -> dg.AssetCheckResult:
        return partition_freshness_result(path, lake.newest_partition(key, column), now())

    return _fresh


def build_freshness_schedule(checks: list[dg.AssetChecksDefinition]):
    keys = [key for c in checks for key in c.check_keys]
    job = dg.define_asset_job(FRESHNESS_JOB, selection=dg.AssetSelection.checks(*keys))
    schedule = dg.ScheduleDefinition(name="freshness_hourly", job=job, cron_schedule="15 * * * *", execution_timezone="UTC")
    return job, schedule
