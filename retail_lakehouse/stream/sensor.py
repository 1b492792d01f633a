"""The `pos_merge` job and the `pos_stream` sensor that requests it, a few batches per run."""

import json
from collections.abc import Iterable, Mapping

import dagster as dg

from retail_lakehouse.landing import LandingZone
from retail_lakehouse.stream.rules import MAX_BATCHES_PER_RUN, POS_SOURCE, new_batches, plan_runs
from retail_lakehouse.stream.tables import POSITIONS

POS_JOB = "pos_merge"
_STEP = POSITIONS.to_python_identifier()

pos_merge_job = dg.define_asset_job(
    POS_JOB,
    selection=dg.AssetSelection.assets(POSITIONS),
    executor_def=dg.in_process_executor,
    description="Merge POS micro-batches into the ledger and inventory positions, exactly once.",
)


def run_config(batches: Iterable[str]) -> dict:
    """The run config of a `pos_merge` run over `batches`."""
    return {"ops": {_STEP: {"config": {"batches": list(batches)}}}}


def requested_batches(config: Mapping) -> list[str]:
    """The batches a `pos_merge` run config asks for (the inverse of `run_config`)."""
    return list(config["ops"][_STEP]["config"]["batches"])


def build_pos_sensor(max_batches: int = MAX_BATCHES_PER_RUN) -> dg.SensorDefinition:
    @dg.sensor(
        name="pos_stream",
        job=pos_merge_job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="New or re-delivered POS micro-batches → small exactly-once merge runs.",
    )
    def pos_stream(context: dg.SensorEvaluationContext, landing: LandingZone):
        seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        current = landing.fingerprints(POS_SOURCE)
        new = new_batches(seen, current)
        cursor = json.dumps({**seen, **current}, sort_keys=True)
        if not new:
            return dg.SensorResult(skip_reason="no new POS batches", cursor=cursor)
        requests = [dg.RunRequest(run_key=key, run_config=run_config(chunk)) for key, chunk in plan_runs(new, current, max_batches)]
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    return pos_stream
