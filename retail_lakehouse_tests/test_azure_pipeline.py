"""The whole pipeline on ADLS Gen2 (Azurite), unchanged asset code: gold equals the local run's."""

import datetime as dt

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from retail_lakehouse import catalog
from retail_lakehouse.azure import AzureAccount, AzureLandingZone, ensure_containers, upload_landing
from retail_lakehouse.definitions import build_defs
from retail_lakehouse.orchestration import run_range
from retail_lakehouse.settings import Settings
from retail_lakehouse_tests.azurite import ACCOUNT_KEY, ACCOUNT_NAME, Azurite, AzuriteNotInstalled
from retail_lakehouse_tests.conftest import START, make_lake

LAST = START + dt.timedelta(days=4)
TOKEN_KEY = "test-card-token-key-not-a-secret"  # the same key make_lake uses locally
GOLD = catalog.names("gold", exclude=catalog.STREAM)


def _comparable(frame: pl.DataFrame) -> pl.DataFrame:
    frame = frame.drop([c for c in ("load_timestamp", "_ingested_at") if c in frame.columns])
    return frame.sort(frame.columns, nulls_last=True)


def test_the_whole_pipeline_runs_on_adls_and_gold_equals_the_local_run(generated_landing, tmp_path, monkeypatch):
    try:
        az = Azurite().start()
    except AzuriteNotInstalled as err:
        pytest.fail(str(err), pytrace=False)
    try:
        account = AzureAccount(ACCOUNT_NAME, account_key=ACCOUNT_KEY, endpoint=az.endpoint)
        ensure_containers(account, ("landing", "bronze", "silver", "gold", "ops"))
        env = {
            "RETAIL_LAKEHOUSE_ENV": "azure",
            "AZURE_STORAGE_ACCOUNT_NAME": ACCOUNT_NAME,
            "AZURE_STORAGE_ACCOUNT_KEY": ACCOUNT_KEY,
            "RETAIL_LAKEHOUSE_AZURE_ENDPOINT": az.endpoint,
            "RETAIL_LAKEHOUSE_TOKEN_KEY": TOKEN_KEY,
            "RETAIL_LAKEHOUSE_START_DATE": START.isoformat(),
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        landing = AzureLandingZone(account_name=ACCOUNT_NAME, account_key=ACCOUNT_KEY, endpoint=az.endpoint)
        upload_landing(generated_landing, landing)

        settings = Settings.from_env(env)
        assert settings.env == "azure"
        assert ACCOUNT_KEY not in repr(settings) and TOKEN_KEY not in repr(settings)
        instance = dg.DagsterInstance.ephemeral()
        result = run_range(build_defs(settings), START, LAST, instance=instance)
        assert result.success
        # Neither secret reaches what the UI and the logs show: event metadata, messages, log lines.
        records = [dg.serialize_value(entry) for entry in instance.all_logs(result.run_id)]
        records.append(dg.serialize_value(instance.get_run_by_id(result.run_id)))
        assert len(records) > 100 and any("table_uri" in r for r in records)
        leaked = [r[:200] for r in records if ACCOUNT_KEY in r or TOKEN_KEY in r]
        assert leaked == []

        local = make_lake(tmp_path, generated_landing)
        assert local.run(START, LAST).success
        options = account.storage_options()
        for name in GOLD:
            remote = pl.read_delta(f"az://gold/{name}", storage_options=options)
            assert_frame_equal(_comparable(remote), _comparable(local.read(f"gold/{name}")))
        assert pl.read_delta("az://gold/fact_sales", storage_options=options).height > 0
    finally:
        az.close()


def test_azurite_stopped_in_the_middle_of_a_run_fails_clearly_and_a_rerun_succeeds(generated_landing, tmp_path, monkeypatch):
    """Bronze is written, then the storage disappears while the run goes on."""
    from deltalake import DeltaTable

    from retail_lakehouse.azure import AzureLakehouse
    from retail_lakehouse.storage import DeltaIOManager
    from retail_lakehouse.bronze.assets import build_bronze_assets
    from retail_lakehouse.partitions import daily_partitions
    from retail_lakehouse.resources import CardTokenizer
    from retail_lakehouse.sources import ALL_SOURCES

    try:
        az = Azurite(location=tmp_path / "azurite").start()  # on disk: blobs outlive the restart
    except AzuriteNotInstalled as err:
        pytest.fail(str(err), pytrace=False)
    try:
        account = AzureAccount(ACCOUNT_NAME, account_key=ACCOUNT_KEY, endpoint=az.endpoint)
        ensure_containers(account, ("landing", "bronze", "silver", "gold", "ops"))
        landing = AzureLandingZone(account_name=ACCOUNT_NAME, account_key=ACCOUNT_KEY, endpoint=az.endpoint)
        upload_landing(generated_landing, landing)
        lake = AzureLakehouse(account_name=ACCOUNT_NAME, account_key=ACCOUNT_KEY, endpoint=az.endpoint, retry_timeout_seconds=2, max_attempts=2)
        partitions = daily_partitions(START)
        bronze = build_bronze_assets(partitions)
        outages = [1]  # the storage goes away once, in the first run

        @dg.asset(key=["silver", "outage_probe"], deps=[a.key for a in bronze], partitions_def=partitions,
                  backfill_policy=dg.BackfillPolicy.single_run(), metadata={"partition_column": "drop_date"})
        def outage_probe(context: dg.AssetExecutionContext) -> pl.DataFrame:
            if outages:
                outages.pop()
                az.stop()
            return pl.DataFrame({"drop_date": [START], "n": [1]})

        defs = dg.Definitions(
            assets=[*bronze, outage_probe],
            jobs=[dg.define_asset_job("lakehouse", selection="*")],
            resources={"lake": lake, "io_manager": DeltaIOManager(lake=lake), "landing": landing, "card_tokenizer": CardTokenizer(key=TOKEN_KEY)},
            executor=dg.in_process_executor,
        )
        result = run_range(defs, START, LAST, raise_on_error=False)
        assert not result.success
        [failure] = [e for e in result.all_events if e.is_step_failure]
        message = str(failure.step_failure_data.error)
        assert failure.step_key == "silver__outage_probe"
        assert "devstoreaccount1" in message and "silver" in message and ACCOUNT_KEY not in message

        az.start()
        options = account.storage_options()
        # Every table written before the outage is whole: its log reads, its rows are all there.
        for source in ALL_SOURCES:
            table = DeltaTable(f"az://bronze/{source}", storage_options=options)
            assert table.version() >= 0
        days = pl.read_delta("az://bronze/customer", storage_options=options)["drop_date"].unique().sort().to_list()
        assert days == [START + dt.timedelta(days=i) for i in range(5)]
        assert not DeltaTable.is_deltatable("az://silver/outage_probe", storage_options=options)

        # After the restart the same run succeeds.
        assert run_range(defs, START, LAST).success
        assert pl.read_delta("az://silver/outage_probe", storage_options=options).height == 1
    finally:
        az.close()
