"""Silver assets: each bronze source cleaned by its rules (`silver/rules.py`) into a table and its
`_quarantine` companion.

Keyed reference data (customer, product, store) is small and rebuilt whole from every bronze
partition, so the latest version of a key wins whatever order drops were processed in. Event data
(sales, payments, inventory, loyalty) is daily-partitioned; sales and payments by their business
date, which a drop can change up to `late_data_days` later (returns and refunds), so partition D
reads the drops of D..D+late_data_days.
"""

import datetime as dt
from collections.abc import Callable
from dataclasses import replace
from functools import partial

import dagster as dg
import polars as pl

from retail_lakehouse import catalog
from retail_lakehouse.engine import Engine, Source
from retail_lakehouse.partitions import days_in, window_dates
from retail_lakehouse.policies import RETRY, SINGLE_RUN
from retail_lakehouse.quality import checks
from retail_lakehouse.quality.policy import check_specs_for
from retail_lakehouse.silver import rules
from retail_lakehouse.specs import asset_attrs
from retail_lakehouse.storage import Audited, Lakehouse


# The rules of each silver table; what the table is (source, grain, partitions, late window,
# history) is declared once in the catalog.
CLEANERS: dict[str, Callable[..., rules.Cleaned]] = {
    "customer": rules.clean_customers,
    "product": rules.clean_products,
    "store": rules.clean_stores,
    "sales": rules.clean_sales,
    "payment": rules.clean_payments,
    "inventory": rules.clean_inventory,
    "loyalty": rules.clean_loyalty,
}


def _held_outside_window(
    lake: Lakehouse, key: dg.AssetKey, latest_outside: pl.DataFrame, column: str, first: dt.date, end: dt.date
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split the latest rows of the window's drops that belong to partitions outside the window
    (returns and refunds of older orders) into those the table already holds, written by earlier
    runs, and those pending: a run of their partitions has yet to write them."""
    lineage = ["_source_file", "_row_number"]
    if latest_outside.height and lake.exists(key):
        in_window = pl.col("drop_date").is_between(first, end, closed="left")
        outside = ~pl.col(column).is_between(first, end, closed="left")
        stored = lake.scan(key).filter(in_window & outside).select(lineage).collect()
    else:
        stored = latest_outside.select(lineage).clear()
    return latest_outside.join(stored, on=lineage, how="semi"), latest_outside.join(stored, on=lineage, how="anti")


def _outputs(clean: Callable[[pl.DataFrame], rules.Cleaned], withheld: frozenset[dt.date], bronze: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """The rule an engine runs: bronze rows (but those of withheld drop dates) cleaned, and the
    drop date of every bronze row for conservation."""
    if withheld:
        bronze = bronze.filter(~pl.col("drop_date").is_in(sorted(withheld)))
    cleaned = clean(bronze)
    out = {"clean": cleaned.clean, "quarantine": cleaned.quarantine, "superseded": cleaned.superseded, "drops": bronze.select("drop_date")}
    if cleaned.history is not None:
        out["history"] = cleaned.history
    return out


def _summary_metadata(balance: pl.DataFrame) -> dict[str, object]:
    totals = balance.select(pl.exclude("drop_date", "balanced").sum()).row(0, named=True)
    return {
        **{f"conservation/{k}": int(v or 0) for k, v in totals.items()},
        "conservation/balanced": bool(balance["balanced"].all()),
    }


def build_silver_asset(
    table: catalog.Table, partitions_def: dg.TimeWindowPartitionsDefinition, late_data_days: int, engine_kind: str = "polars"
) -> dg.AssetsDefinition:
    partitioned = table.partition is not None
    source = table.cleaned_from
    history = ("silver", f"{table.name}_history") in catalog.TABLES
    cleaner = CLEANERS[table.name]
    first_partition = partitions_def.start.date()
    common = {"group_name": "silver", "kinds": {engine_kind, "delta"}}
    outs = {
        "clean": dg.AssetOut(
            key=["silver", table.name],
            **asset_attrs(["silver", table.name]),
            **common,
        ),
        "quarantine": dg.AssetOut(
            key=["silver", f"{table.name}_quarantine"],
            **asset_attrs(["silver", f"{table.name}_quarantine"]),
            **common,
        ),
    }
    if history:
        outs["history"] = dg.AssetOut(
            key=["silver", f"{table.name}_history"],
            **asset_attrs(["silver", f"{table.name}_history"]),
            **common,
        )
    mapping = (
        dg.TimeWindowPartitionMapping(start_offset=0, end_offset=late_data_days, allow_nonexistent_upstream_partitions=True)
        if table.late
        else None
    )
    path = ("silver", table.name)
    clean_key = dg.AssetKey(list(path))
    bronze_key = dg.AssetKey(["bronze", source])
    # What an engine that splits the input groups by: every version of a key in one group. Keyed
    # reference data is small and has rules across keys (one email, one customer): one group.
    schema = catalog.schema(path)
    group_by = tuple(c for c in table.unique if schema[c] == pl.String) if partitioned else ()

    def clean(frame: pl.DataFrame) -> rules.Cleaned:
        return cleaner(frame, late_data_days, first_partition) if table.late else cleaner(frame)

    def audit(clean_rows, balance, quarantine, day_column, days) -> list[checks.Verdict]:
        return [
            checks.contract_result(path, clean_rows, day_column, days),
            checks.conservation_result(path, balance),
            *checks.quarantine_results(path, balance, quarantine),
        ]

    @dg.multi_asset(
        name=f"silver_{table.name}",
        outs=outs,
        # Read by the engine, not loaded by the I/O manager: the dependency gives lineage and the window.
        ins={"bronze": dg.AssetIn(["bronze", source], partition_mapping=mapping, dagster_type=dg.Nothing)},
        check_specs=check_specs_for(clean_key),
        partitions_def=partitions_def if partitioned else None,
        backfill_policy=SINGLE_RUN,
        retry_policy=RETRY,
    )
    def _silver(context: dg.AssetExecutionContext, lake: Lakehouse, engine: Engine):
        def run(withheld: frozenset[dt.date] = frozenset()) -> tuple[pl.DataFrame, rules.Cleaned]:
            bronze = Source.for_input(context, "bronze", bronze_key, "drop_date") if partitioned else Source(bronze_key)
            out = engine.map_groups(lake, bronze, group_by, partial(_outputs, clean, withheld))
            return out["drops"], rules.Cleaned(out["clean"], out["quarantine"], out["superseded"], out.get("history"))

        drops, cleaned = run()
        if partitioned:
            first, end = window_dates(context.partition_time_window)
            days = days_in(first, end)
            in_window = pl.col("drop_date").is_between(first, end, closed="left")
            in_partitions = pl.col(table.partition).is_between(first, end, closed="left")
            rows = cleaned.clean.filter(in_partitions)
            quarantine = cleaned.quarantine.filter(in_window)
            held, pending = _held_outside_window(
                lake, clean_key, cleaned.clean.filter(~in_partitions & in_window), table.partition, first, end
            )
            balance = rules.conservation(
                drops.filter(in_window),
                replace(cleaned, quarantine=quarantine, superseded=cleaned.superseded.filter(in_window)),
                silver=pl.concat([rows.select("drop_date"), held.select("drop_date")]),
                days=days,
                pending=pending,
            )
            verdicts = audit(rows, balance, quarantine, table.partition, days)
            failed = frozenset().union(*(v.failed_days for v in verdicts))
            # Each day's conservation goes with its materialization, in the I/O manager's one call per day.
            per_day = {row.pop("drop_date"): {f"conservation/{k}": v for k, v in row.items()} for row in balance.iter_rows(named=True)}
            yield dg.Output(Audited(rows, failed, day_metadata=per_day), output_name="clean", metadata=_summary_metadata(balance))
            yield dg.Output(Audited(quarantine, failed), output_name="quarantine")
        else:
            days = sorted(drops["drop_date"].unique().drop_nulls().to_list())
            balance = rules.conservation(drops, cleaned)
            verdicts = audit(cleaned.clean, balance, cleaned.quarantine, "drop_date", days)
            failed = frozenset().union(*(v.failed_days for v in verdicts))
            whole = any(v.blocks for v in verdicts) and not failed
            if failed:
                # The failing drops are withheld: the table is published from every other drop.
                _, cleaned = run(failed)
            meta = {**_summary_metadata(balance), "withheld_drop_dates": ", ".join(d.isoformat() for d in sorted(failed)) or "none"}
            yield dg.Output(Audited(cleaned.clean, failed=whole), output_name="clean", metadata=meta)
            yield dg.Output(Audited(cleaned.quarantine, failed=whole), output_name="quarantine")
            if history:
                yield dg.Output(Audited(cleaned.history, failed=whole), output_name="history")
        for verdict in verdicts:
            if verdict.blocks:
                context.log.error(f"{clean_key.to_user_string()} {verdict.result.check_name} {verdict.result.description}")
            yield verdict.result

    return _silver


def build_silver_assets(partitions_def: dg.PartitionsDefinition, late_data_days: int, engine_kind: str = "polars") -> list[dg.AssetsDefinition]:
    return [build_silver_asset(t, partitions_def, late_data_days, engine_kind) for t in catalog.tables("silver", catalog.CLEAN)]
