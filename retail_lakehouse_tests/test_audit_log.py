"""The audit log (seed 000 §2.2): a row per table write and per failed write, reported to Dagster."""

import datetime as dt
from pathlib import Path

import dagster as dg
import polars as pl

from retail_lakehouse.policies import RETRY
from retail_lakehouse.storage import AUDIT_LOG_KEY
from retail_lakehouse.stream.sensor import run_config
from retail_lakehouse_tests.conftest import START, make_lake


def test_every_write_and_every_failed_write_is_audited_and_the_audit_log_is_materialized(generated_landing, tmp_path):
    lake = make_lake(tmp_path, generated_landing)
    last = START + dt.timedelta(days=4)
    # A real fault: where gold/dim_store's table should be there is a file, so its write fails.
    blocked = Path(lake.table_path("gold/dim_store"))
    blocked.parent.mkdir(parents=True)
    blocked.write_text("not a table")
    with dg.DagsterInstance.ephemeral() as instance:
        result = lake.run(START, last, instance=instance, raise_on_error=False)
        assert not result.success
        audit = lake.read("ops/audit_log").filter(pl.col("run_id") == result.run_id)
        # Each attempt (the first and its retries) is a write that failed, and has its row.
        attempts = audit.filter(pl.col("status") == "FAILED")
        assert attempts.height == 1 + RETRY.max_retries
        failed = attempts.row(0, named=True)
        assert (failed["layer"], failed["table"], failed["partitions"], failed["record_count"]) == ("gold", "dim_store", "all", 0)
        assert failed["error_class"] and str(blocked) in failed["error_message"]
        # Every other table the run wrote has its row, with the count its table holds.
        written = audit.filter(pl.col("status") == "SUCCESS")
        for row in written.iter_rows(named=True):
            table = lake.read(f"{row['layer']}/{row['table']}")
            if row["partitions"] == "all":
                assert row["record_count"] == table.height, row["table"]
            assert row["error_class"] is None and row["error_message"] is None
        materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
        assert {f"{r['layer']}/{r['table']}" for r in written.iter_rows(named=True)} == materialized - {"gold/pos_ledger"}
        # The audit log shows as materialized in the UI, each commit with what it appended.
        events = [e.asset_materialization.metadata for e in instance.fetch_materializations(AUDIT_LOG_KEY, limit=10).records]
        assert events and {m["run_id"].value for m in events} == {result.run_id}
        assert sum(m["rows_appended"].value for m in events) == audit.height
        assert sum(m["failed_writes"].value for m in events) == attempts.height


def test_a_failed_write_a_step_makes_itself_is_audited_too(generated_landing, tmp_path):
    """The stream's MERGE into the ledger does not go through the I/O manager; its failure is a row all the same."""
    lake = make_lake(tmp_path, generated_landing)
    assert lake.run(START, START + dt.timedelta(days=4)).success
    # A real fault, as above: a file where the ledger's table would be created.
    blocked = Path(lake.table_path("gold/pos_ledger"))
    blocked.write_text("not a table")
    batches = [f"pos_events/{p.name}" for p in sorted((generated_landing / "pos_events").glob("*.jsonl"))[:2]]
    result = lake.defs.resolve_job_def("pos_merge").execute_in_process(run_config=run_config(batches), raise_on_error=False)
    assert not result.success
    audit = lake.read("ops/audit_log").filter(pl.col("run_id") == result.run_id)
    failed = audit.filter(pl.col("status") == "FAILED")
    assert failed.height == 1 + RETRY.max_retries
    assert set(failed["table"]) == {"pos_ledger"} and set(failed["record_count"]) == {0}
    assert str(blocked) in failed["error_message"][0]
    assert audit.filter(pl.col("status") == "SUCCESS").is_empty()
