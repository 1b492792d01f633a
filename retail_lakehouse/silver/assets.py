"""Silver assets: each bronze source cleaned by its rules (`silver/rules.py`) into a table and its
`_quarantine` companion.

Keyed reference data (customer, product, store) is small and rebuilt whole from every bronze
partition, so the latest version of a key wins whatever order drops were processed in. Event data
(sales, payments, inventory, loyalty) is daily-partitioned; sales and payments by their business
date, which a drop can change up to `late_data_days` later (returns and refunds), so partition D
reads the drops of D..D+late_data_days.
"""

from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg
import polars as pl

from retail_lakehouse.partitions import window_dates
from retail_lakehouse.policies import RETRY, SINGLE_RUN
from retail_lakehouse.quality import checks
from retail_lakehouse.quality.policy import check_specs_for
from retail_lakehouse.silver import rules
from retail_lakehouse.storage import PARTITION_COLUMN


@dataclass(frozen=True)
class SilverTable:
    name: str
    source: str  # the bronze table it is cleaned from
    clean: Callable[..., rules.Cleaned]
    grain: str
    partition_column: str | None = None  # None: unpartitioned, rebuilt whole
    late: bool = False  # later drops can change a partition (returns, refunds)
    history: bool = False  # also keeps every valid version, for SCD2 downstream


SILVER_TABLES = (
    SilverTable("customer", "customer", rules.clean_customers, "one row per customer_id, its latest valid version", history=True),
    SilverTable("product", "product", rules.clean_products, "one row per product_id, its latest valid version", history=True),
    SilverTable("store", "store", rules.clean_stores, "one row per store_id, its latest valid version"),
    SilverTable("sales", "sales_returns", rules.clean_sales, "one row per (order_id, line_number), its latest valid version", "order_date", late=True),
    SilverTable("payment", "payment_refund", rules.clean_payments, "one row per payment_id, its latest valid version", "transaction_date", late=True),
    SilverTable("inventory", "inventory", rules.clean_inventory, "one row per (snapshot_date, store_id, product_id)", "snapshot_date"),
    SilverTable("loyalty", "loyalty", rules.clean_loyalty, "one row per event_id", "drop_date"),
)


def _conservation_metadata(balance: pl.DataFrame) -> dict[str, object]:
    totals = balance.select(pl.exclude("drop_date", "balanced").sum()).row(0, named=True)
    per_day = balance.sort("drop_date").with_columns(pl.col("drop_date").cast(pl.String))
    return {
        **{f"conservation/{k}": int(v or 0) for k, v in totals.items()},
        "conservation/balanced": bool(balance["balanced"].all()),
        "conservation/per_drop_date": dg.MetadataValue.md(checks.markdown(per_day)),
    }


def build_silver_asset(table: SilverTable, partitions_def: dg.PartitionsDefinition, late_data_days: int) -> dg.AssetsDefinition:
    partitioned = table.partition_column is not None
    common = {"group_name": "silver", "kinds": {"polars", "delta"}}
    outs = {
        "clean": dg.AssetOut(
            key=["silver", table.name],
            description=f"Cleaned and validated `{table.source}`: {table.grain}.",
            metadata={PARTITION_COLUMN: table.partition_column} if partitioned else None,
            **common,
        ),
        "quarantine": dg.AssetOut(
            key=["silver", f"{table.name}_quarantine"],
            description=f"Every rejected `{table.source}` row: original values, reject_reasons, source file and row.",
            metadata={PARTITION_COLUMN: "drop_date"} if partitioned else None,
            **common,
        ),
    }
    if table.history:
        outs["history"] = dg.AssetOut(
            key=["silver", f"{table.name}_history"],
            description=f"Every valid version of each `{table.source}` record, in delivery order (feeds SCD2).",
            **common,
        )
    mapping = (
        dg.TimeWindowPartitionMapping(start_offset=0, end_offset=late_data_days, allow_nonexistent_upstream_partitions=True)
        if table.late
        else None
    )

    @dg.multi_asset(
        name=f"silver_{table.name}",
        outs=outs,
        ins={"bronze": dg.AssetIn(["bronze", table.source], partition_mapping=mapping)},
        check_specs=check_specs_for(dg.AssetKey(["silver", table.name])),
        partitions_def=partitions_def if partitioned else None,
        backfill_policy=SINGLE_RUN,
        retry_policy=RETRY,
    )
    def _silver(context: dg.AssetExecutionContext, bronze: pl.LazyFrame):
        frame = bronze.collect()
        cleaned = table.clean(frame, late_data_days) if table.late else table.clean(frame)
        balance = rules.conservation(frame, cleaned)
        clean, quarantine = cleaned.clean, cleaned.quarantine
        if partitioned:
            first, end = window_dates(context.partition_time_window)
            clean = clean.filter(pl.col(table.partition_column).is_between(first, end, closed="left"))
            quarantine = quarantine.filter(pl.col("drop_date").is_between(first, end, closed="left"))
            balance = balance.filter(pl.col("drop_date").is_between(first, end, closed="left"))
        yield dg.Output(clean, output_name="clean", metadata=_conservation_metadata(balance))
        yield dg.Output(quarantine, output_name="quarantine")
        if table.history:
            yield dg.Output(cleaned.history, output_name="history")
        path = ("silver", table.name)
        yield checks.contract_result(path, clean)
        yield checks.conservation_result(path, balance)
        yield from checks.quarantine_results(path, int(balance["bronze_rows"].sum()), quarantine)

    return _silver


def build_silver_assets(partitions_def: dg.PartitionsDefinition, late_data_days: int) -> list[dg.AssetsDefinition]:
    return [build_silver_asset(t, partitions_def, late_data_days) for t in SILVER_TABLES]
