"""The whole pipeline on ADLS Gen2 (Azurite), unchanged asset code: gold equals the local run's."""

import datetime as dt

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from retail_lakehouse.azure import AzureAccount, AzureLandingZone, ensure_containers, upload_landing
from retail_lakehouse.definitions import build_defs
from retail_lakehouse.orchestration import run_range
from retail_lakehouse.settings import Settings
from retail_lakehouse_tests.azurite import ACCOUNT_KEY, ACCOUNT_NAME, Azurite, AzuriteNotInstalled
from retail_lakehouse_tests.conftest import START, make_lake

LAST = START + dt.timedelta(days=4)
TOKEN_KEY = "test-card-token-key-not-a-secret"  # the same key make_lake uses locally
GOLD = ["dim_customer", "dim_product", "dim_store", "fact_sales", "fact_payment", "agg_daily_sales",
        "sales_performance", "customer_lifetime_value", "product_return_analysis"]


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
        assert settings.env == "azure" and "AZURE_STORAGE_ACCOUNT_KEY" not in repr(settings).replace("'AZURE_STORAGE_ACCOUNT_KEY': 'set'", "")
        assert run_range(build_defs(settings), START, LAST).success

        local = make_lake(tmp_path, generated_landing)
        assert local.run(START, LAST).success
        options = account.storage_options()
        for name in GOLD:
            remote = pl.read_delta(f"az://gold/{name}", storage_options=options)
            assert_frame_equal(_comparable(remote), _comparable(local.read(f"gold/{name}")))
        assert pl.read_delta("az://gold/fact_sales", storage_options=options).height > 0
    finally:
        az.close()
