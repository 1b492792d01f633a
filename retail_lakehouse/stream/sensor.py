"""The `pos_merge` job and the `pos_stream` sensor that requests it, in runs sized by their data."""

import datetime as dt
from collections.abc import Callable, Iterable, Mapping

import dagster as dg

from retail_lakehouse.landing import LandingZone
from retail_lakehouse.storage import Lakehouse
from retail_lakehouse.stream.rules import (
    LATE_DAYS,
    MAX_RUN_BATCHES,
    MAX_RUN_BYTES,
    POS_SOURCE,
    RECONCILE_DAYS,
    StreamCursor,
    listing_for,
    plan_runs,
    plan_tick,
)
from retail_lakehouse.stream.tables import POSITIONS, WINDOWS, merged_batches

POS_JOB = "pos_merge"
_STEP = POSITIONS.to_python_identifier()
_STEPS = (_STEP, WINDOWS.to_python_identifier())

pos_merge_job = dg.define_asset_job(
    POS_JOB,
    selection=dg.AssetSelection.assets(POSITIONS, WINDOWS),
    executor_def=dg.in_process_executor,
    description="Merge POS micro-batches into the ledger and inventory positions, exactly once, and refresh their 5-minute windows.",
)


def run_config(batches: Iterable[str]) -> dict:
    """The run config of a `pos_merge` run over `batches` (both steps read the same list)."""
    batches = list(batches)
    return {"ops": {step: {"config": {"batches": batches}} for step in _STEPS}}


def requested_batches(config: Mapping) -> list[str]:
    """The batches a `pos_merge` run config asks for (the inverse of `run_config`)."""
    return list(config["ops"][_STEP]["config"]["batches"])


def _utc_today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def build_pos_sensor(
    late_days: int = LATE_DAYS,
    reconcile_days: int = RECONCILE_DAYS,
    max_run_bytes: int = MAX_RUN_BYTES,
    max_run_batches: int = MAX_RUN_BATCHES,
    today: Callable[[], dt.date] = _utc_today,
) -> dg.SensorDefinition:
    @dg.sensor(
        name="pos_stream",
        job=pos_merge_job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=(
            "New or re-delivered POS micro-batches of the late window → exactly-once merge runs sized "
            "by their data; once a day, batches of the last weeks the ledger lacks."
        ),
    )
    def pos_stream(context: dg.SensorEvaluationContext, landing: LandingZone, lake: Lakehouse):
        cursor = StreamCursor.from_json(context.cursor)
        day = today()
        first, reconcile = listing_for(cursor, day, late_days, reconcile_days)
        files = landing.list_files(POS_SOURCE) if first is None else landing.list_dated(POS_SOURCE, first, day + dt.timedelta(days=2))
        tick = plan_tick(cursor, files, day, merged_batches(lake, first) if reconcile else None, late_days)
        if tick.outside_window:
            context.log.warning(
                f"{len(tick.outside_window)} POS batch(es) from before the late window ({tick.outside_window[0]} "
                f"... {tick.outside_window[-1]}) are not in the ledger: requested"
            )
        if tick.not_batches:
            context.log.warning(f"{len(tick.not_batches)} file(s) in {POS_SOURCE}/ are not POS micro-batch names, ignored: {tick.not_batches[:20]}")
        runs = plan_runs(tick.pending, max_run_bytes, max_run_batches)
        if not runs:
            return dg.SensorResult(skip_reason="no new POS batches", cursor=tick.cursor.to_json())
        requests = [dg.RunRequest(run_key=key, run_config=run_config(chunk)) for key, chunk in runs]
        return dg.SensorResult(run_requests=requests, cursor=tick.cursor.to_json())

    return pos_stream
