"""The batching event log storage answers the UI's queries like the stock one.

Runs the same ranged single-run backfill (and a failing one) on a stock SQLite instance and on one
configured with retail_lakehouse.instance.BatchingSqliteEventLogStorage, then compares what the
webserver reads: materialized partitions, the status cache (materialized / failed / in progress),
per-partition metadata, the asset record, and the run's event log.
"""

import os
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

DAYS = dg.DailyPartitionsDefinition(start_date="2025-01-01")
FIRST, LAST, N = "2025-01-01", "2025-02-09", 40
STORAGE_YAML = (
    "event_log_storage:\n  module: retail_lakehouse.instance\n  class: BatchingSqliteEventLogStorage\n"
)


def _assets(fail: bool):
    common = dict(partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run())

    @dg.asset(**common)
    def raw(context: dg.AssetExecutionContext) -> None:
        for key in context.partition_keys:  # partition-scoped metadata
            context.add_asset_metadata({"day": key}, partition_key=key)

    @dg.asset(**common, deps=[raw])
    def clean(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        if fail:
            raise RuntimeError("boom")
        return dg.MaterializeResult(metadata={"rows": 5})

    @dg.asset(**common, deps=[clean])
    def report() -> None:
        return None

    return [raw, clean, report]


RANGE_TAGS = {ASSET_PARTITION_RANGE_START_TAG: FIRST, ASSET_PARTITION_RANGE_END_TAG: LAST}


def _run(home: Path, fail: bool | None) -> dict:
    """fail=None: only create the run (planned events, nothing executed), as a run in progress."""
    out = {}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        if fail is None:
            job = dg.Definitions(assets=_assets(False)).resolve_implicit_global_asset_job_def()
            run = instance.create_run_for_job(job_def=job, tags=RANGE_TAGS)
            instance.handle_run_event(  # what the run worker records when it starts
                run.run_id, dg.DagsterEvent(dg.DagsterEventType.RUN_START.value, job_name=job.name))
        else:
            result = dg.materialize(_assets(fail), instance=instance, raise_on_error=False, tags=RANGE_TAGS)
            out["success"] = result.success
            logs = instance.all_logs(result.run_id)
            out["materializations_in_run_log"] = sum(
                1 for e in logs if e.dagster_event_type == dg.DagsterEventType.ASSET_MATERIALIZATION)
        for name in ("raw", "clean", "report"):
            key = dg.AssetKey(name)
            status = get_and_update_asset_status_cache_value(instance, key, DAYS)
            recs = instance.fetch_materializations(key, limit=1000).records
            record = instance.get_asset_records([key])
            last = record[0].asset_entry.last_materialization_record if record else None
            out[name] = {
                "materialized": sorted(instance.get_materialized_partitions(key)),
                "cache_materialized": sorted(status.deserialize_materialized_partition_subsets(DAYS).get_partition_keys()),
                "failed": sorted(status.deserialize_failed_partition_subsets(DAYS).get_partition_keys()),
                "in_progress": sorted(status.deserialize_in_progress_partition_subsets(DAYS).get_partition_keys()),
                "metadata": sorted((r.partition_key, tuple(sorted((k, str(v.value)) for k, v in r.asset_materialization.metadata.items()))) for r in recs),
                "last_partition": last.partition_key if last else None,
            }
    return out


@pytest.mark.parametrize("fail", [False, True, None], ids=["success", "failure", "in_progress"])
def test_batching_storage_matches_stock(tmp_path: Path, fail: bool | None, monkeypatch):
    # The storage turns batching on with os.environ.setdefault: let monkeypatch restore the env.
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "0")
    stock, batching = tmp_path / "stock", tmp_path / "batching"
    for home, extra in ((stock, ""), (batching, STORAGE_YAML)):
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n" + extra)
    monkeypatch.setenv("DAGSTER_HOME", str(stock))
    expected = _run(stock, fail)
    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE")
    monkeypatch.setenv("DAGSTER_HOME", str(batching))  # the storage's default base_dir
    got = _run(batching, fail)
    assert os.environ.get("DAGSTER_EVENT_BATCH_SIZE") == "10000"
    assert got == expected
    if fail is None:
        assert len(expected["report"]["in_progress"]) == N and expected["report"]["failed"] == []
    elif fail:
        assert expected["clean"]["failed"] == expected["report"]["failed"]
        assert len(expected["clean"]["failed"]) == N and expected["raw"]["failed"] == []
    else:
        assert len(expected["report"]["materialized"]) == N
        assert expected["raw"]["metadata"][0][1] == (("day", FIRST),)
