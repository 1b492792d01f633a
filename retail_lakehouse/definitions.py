"""The code location: `defs`, built from the environment's settings by `build_defs`.

Every environment shares the asset code and the resource keys (`lake`, `io_manager`, `landing`,
`card_tokenizer`, `engine`, `alerts`); only the classes and their configuration differ. `lake` is the one
client of the Delta tables; the I/O manager writes and reads through it. `engine` runs the row-level
rules of silver and gold (Polars in process, or Spark: `retail_lakehouse/engine.py`).
"""


import functools
import gc
import warnings

import dagster as dg

from retail_lakehouse.alerts import AlertSink, build_alert_sensors
from retail_lakehouse.bronze.assets import build_bronze_assets
from retail_lakehouse.engine import build_engine
from retail_lakehouse.gold.assets import build_gold_assets
from retail_lakehouse.landing import LocalLandingZone
from retail_lakehouse.maintenance import build_maintenance
from retail_lakehouse.orchestration import (
    build_daily_schedule,
    build_lakehouse_job,
    build_landing_sensor,
)
from retail_lakehouse.partitions import daily_partitions
from retail_lakehouse.quality.freshness import build_freshness_checks, build_freshness_schedule
from retail_lakehouse.quality.policy import FRESHNESS_CHECKED
from retail_lakehouse.quality.stored import build_stored_contract_checks
from retail_lakehouse.specs import asset_attrs
from retail_lakehouse.resources import CardTokenizer
from retail_lakehouse.settings import Settings
from retail_lakehouse.silver.assets import build_silver_assets
from retail_lakehouse.storage import AUDIT_LOG_KEY, PARTITION_COLUMN, DeltaIOManager, LocalLakehouse
from retail_lakehouse.stream.assets import build_inventory_assets
from retail_lakehouse.stream.sensor import build_pos_sensor, pos_merge_job


# Beta in 1.13 and relied on by design: single-run backfills, late-data windows that reach past the
# last partition, and the `owners` Dagster itself passes to the run-failure sensor. Nothing else is hidden.
warnings.filterwarnings(
    "ignore",
    message=r"Parameter `(backfill_policy|allow_nonexistent_upstream_partitions|owners)` ",
    category=dg.BetaWarning,
)
# Code references (each asset's link to the function that defines it) are beta in 1.13 too.
warnings.filterwarnings(
    "ignore",
    message=r"(Function|Class) `(with_source_code_references|CodeReferencesMetadataValue|LocalFileCodeReference)` ",
    category=dg.BetaWarning,
)


def build_resources(settings: Settings) -> dict[str, object]:
    common = {
        "card_tokenizer": _card_tokenizer(settings),
        "alerts": AlertSink(webhook_url=dg.EnvVar("RETAIL_LAKEHOUSE_ALERT_WEBHOOK")) if settings.alert_webhook_from_env else AlertSink(),
        "engine": build_engine(
            settings.engine,
            settings.spark_master,
            dg.EnvVar("RETAIL_LAKEHOUSE_SPARK_REMOTE") if settings.spark_remote_from_env else None,
            settings.spark_driver_memory,
            settings.spark_staging,
        ),
    }
    if settings.env == "azure":
        from retail_lakehouse.azure import build_azure_resources

        return {**build_azure_resources(settings.azure_env), **common}
    lake = LocalLakehouse(root=str(settings.lake_root.absolute()), lock_timeout_seconds=settings.lock_timeout_seconds)
    return {
        "lake": lake,
        "io_manager": DeltaIOManager(lake=lake),
        "landing": LocalLandingZone(root=str(settings.landing_root.absolute())),
        **common,
    }


def _card_tokenizer(settings: Settings) -> CardTokenizer:
    if settings.token_key_from_env:
        return CardTokenizer(key=dg.EnvVar("RETAIL_LAKEHOUSE_TOKEN_KEY"))
    return CardTokenizer(key_file=str(settings.token_key_file))


def build_defs(settings: Settings) -> dg.Definitions:
    partitions = daily_partitions(settings.start_date)
    assets = [
        *build_bronze_assets(partitions),
        *build_silver_assets(partitions, settings.late_data_days, settings.engine),
        *build_gold_assets(partitions, settings.start_date, settings.engine),
    ]
    inventory = build_inventory_assets()
    partition_columns = {
        tuple(key.path): asset.metadata_by_key[key][PARTITION_COLUMN]
        for asset in assets
        for key in asset.keys
        if tuple(key.path) in FRESHNESS_CHECKED
    }
    freshness_checks = build_freshness_checks(partition_columns)
    stored_checks = build_stored_contract_checks()
    freshness_job, freshness_schedule = build_freshness_schedule(freshness_checks)
    job = build_lakehouse_job(freshness_checks)
    keys = [k for a in [*assets, *inventory] for k in (a.keys if isinstance(a, dg.AssetsDefinition) else [a.key])]
    tables = sorted({k for k in keys if k.path[0] in ("bronze", "silver", "gold")}, key=str)
    maintenance_job, maintenance_schedule = build_maintenance([*tables, AUDIT_LOG_KEY])
    audit_log = dg.AssetSpec(
        AUDIT_LOG_KEY,
        group_name="ops",
        kinds={"delta"},
        **asset_attrs(AUDIT_LOG_KEY),
    )
    lakehouse = dg.Definitions(
        # Each asset links to the function that defines it (the UI's "code references").
        assets=dg.with_source_code_references([*assets, *inventory, audit_log]),
        asset_checks=[*freshness_checks, *stored_checks],
        jobs=[job, freshness_job, pos_merge_job, maintenance_job],
        schedules=[
            build_daily_schedule(job, settings.start_date, settings.late_data_days),
            freshness_schedule,
            maintenance_schedule,
        ],
        sensors=[
            build_landing_sensor(job, settings.start_date, settings.late_data_days),
            build_pos_sensor(),
            *build_alert_sensors(),
        ],
        resources=build_resources(settings),
        # Steps share one process: a subprocess per step costs ~1 s of imports and buys nothing
        # when the work is Polars in memory.
        executor=dg.in_process_executor,
    )
    if not settings.sql_url_from_env:
        return lakehouse
    # Serving (seed 000 §1.4) exists only with a database to serve to, so without one the
    # definitions are exactly the lakehouse's.
    from retail_lakehouse.serving.assets import build_serving_defs

    return dg.Definitions.merge(lakehouse, build_serving_defs(partitions, job))


# Dagster calls `defs` each time it reconstructs the code location: six times for one CLI run, at
# 0.4 s each. The same settings give the same definitions, so they are built once per process.
@functools.cache
def _built(settings: Settings) -> dg.Definitions:
    built = build_defs(settings)
    # The definitions and the modules they come from live as long as the process: out of the cyclic
    # collector's view, like what was loaded before the package (see retail_lakehouse/__init__.py).
    gc.freeze()
    return built


@dg.definitions
def defs() -> dg.Definitions:
    """The code location, built from the environment when Dagster loads it (not at import, so
    tests and tools import `build_defs` without reading the environment)."""
    return _built(Settings.from_env())
