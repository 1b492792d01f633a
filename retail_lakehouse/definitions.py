"""The code location: `defs`, built from the environment's settings by `build_defs`.

Every environment shares the asset code and the resource keys (`io_manager`, `landing`,
`card_tokenizer`); only the classes and their configuration differ.
"""


import warnings

import dagster as dg

from retail_lakehouse.bronze.assets import build_bronze_assets
from retail_lakehouse.gold.assets import build_gold_assets
from retail_lakehouse.landing import LocalLandingZone
from retail_lakehouse.maintenance import build_maintenance
from retail_lakehouse.orchestration import (
    build_daily_schedule,
    build_failure_sensor,
    build_lakehouse_job,
    build_landing_sensor,
)
from retail_lakehouse.partitions import daily_partitions
from retail_lakehouse.pos_stream import build_inventory_assets, build_pos_sensor, pos_merge_job
from retail_lakehouse.quality.freshness import build_freshness_checks, build_freshness_schedule
from retail_lakehouse.quality.policy import FRESHNESS_CHECKED
from retail_lakehouse.resources import CardTokenizer
from retail_lakehouse.settings import Settings
from retail_lakehouse.silver.assets import build_silver_assets
from retail_lakehouse.storage import AUDIT_LOG_KEY, PARTITION_COLUMN, LocalDeltaIOManager


# `backfill_policy` is beta in 1.13, and single-run backfills are the design: say it once, here.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)


def build_resources(settings: Settings) -> dict[str, object]:
    if settings.env == "azure":
        from retail_lakehouse.azure import build_azure_resources

        return {**build_azure_resources(settings.azure_env), "card_tokenizer": _card_tokenizer(settings)}
    return {
        "io_manager": LocalDeltaIOManager(root=str(settings.lake_root.absolute())),
        "landing": LocalLandingZone(root=str(settings.landing_root.absolute())),
        "card_tokenizer": _card_tokenizer(settings),
    }


def _card_tokenizer(settings: Settings) -> CardTokenizer:
    if settings.token_key_from_env:
        return CardTokenizer(key=dg.EnvVar("RETAIL_LAKEHOUSE_TOKEN_KEY"))
    return CardTokenizer(key_file=str(settings.token_key_file))


def build_defs(settings: Settings) -> dg.Definitions:
    partitions = daily_partitions(settings.start_date)
    assets = [
        *build_bronze_assets(partitions),
        *build_silver_assets(partitions, settings.late_data_days),
        *build_gold_assets(partitions, settings.start_date),
    ]
    inventory = build_inventory_assets(settings.alert_webhook)
    partition_columns = {
        tuple(key.path): asset.metadata_by_key[key][PARTITION_COLUMN]
        for asset in assets
        for key in asset.keys
        if tuple(key.path) in FRESHNESS_CHECKED
    }
    freshness_checks = build_freshness_checks(partition_columns)
    freshness_job, freshness_schedule = build_freshness_schedule(freshness_checks)
    job = build_lakehouse_job(freshness_checks)
    keys = [k for a in [*assets, *inventory] for k in (a.keys if isinstance(a, dg.AssetsDefinition) else [a.key])]
    tables = sorted({k for k in keys if k.path[0] in ("bronze", "silver", "gold")}, key=str)
    maintenance_job, maintenance_schedule = build_maintenance([*tables, AUDIT_LOG_KEY])
    audit_log = dg.AssetSpec(
        AUDIT_LOG_KEY,
        group_name="ops",
        kinds={"delta"},
        description="One row per table written: run id, layer, table, partitions, record count, status, time.",
    )
    return dg.Definitions(
        assets=[*assets, *inventory, audit_log],
        asset_checks=freshness_checks,
        jobs=[job, freshness_job, pos_merge_job, maintenance_job],
        schedules=[
            build_daily_schedule(job, settings.start_date, settings.late_data_days),
            freshness_schedule,
            maintenance_schedule,
        ],
        sensors=[
            build_landing_sensor(job, settings.start_date, settings.late_data_days),
            build_pos_sensor(),
            build_failure_sensor(),
        ],
        resources=build_resources(settings),
        # Steps share one process: a subprocess per step costs ~1 s of imports and buys nothing
        # when the work is Polars in memory.
        executor=dg.in_process_executor,
    )


defs = build_defs(Settings.from_env())
