"""The stream's assets: the ledger, `gold/inventory_positions` and `gold/pos_sales_5min`."""

import dagster as dg
import polars as pl
from pydantic import Field

from retail_lakehouse.alerts import LOW_STOCK, Alert, AlertSink
from retail_lakehouse.gold.positions import POS_EVENT_SCHEMA, POSITION_SCHEMA, sales_windows_5min
from retail_lakehouse.landing import LandingZone
from retail_lakehouse.policies import RETRY, SINGLE_RUN
from retail_lakehouse.quality import checks
from retail_lakehouse.quality.policy import check_specs_for
from retail_lakehouse.specs import asset_attrs
from retail_lakehouse.storage import AuditEntry, Lakehouse
from retail_lakehouse.stream.tables import INVENTORY, LEDGER, PAIR, POSITIONS, WINDOWS, Merged, apply_batches, recompute_positions, write_positions

# Stream runs and the daily run both write the positions; with a limit of 1 on this pool
# (`dagster instance concurrency set inventory_positions 1`) their steps never overlap, so a
# recompute can never overwrite a merge it did not see.
POSITIONS_POOL = "inventory_positions"


class PosBatches(dg.Config):
    batches: list[str] = Field(
        default_factory=list,
        description="Micro-batches (pos_events/<file>) to merge first, as the pos_stream sensor requests; none: recompute every position.",
    )


def _stream_metadata(merged: Merged) -> dict[str, object]:
    return {
        "batches": len(merged.applied),
        "merged": merged.count("merged"),
        "already_applied": merged.count("already applied"),
        "rejected_batches": merged.count("rejected"),
        "events": sum(a.events for a in merged.applied),
        "events_inserted": merged.inserted,
        "positions_updated": merged.positions_updated,
    }


def build_inventory_assets() -> list:
    ledger = dg.AssetSpec(LEDGER, group_name="gold", kinds={"delta"}, **asset_attrs(LEDGER))

    @dg.asset(
        key=POSITIONS,
        group_name="gold",
        kinds={"polars", "delta"},
        deps=[INVENTORY, LEDGER],
        pool=POSITIONS_POOL,
        backfill_policy=SINGLE_RUN,
        retry_policy=RETRY,
        check_specs=check_specs_for(POSITIONS),
        **asset_attrs(POSITIONS),
    )
    def inventory_positions(context: dg.AssetExecutionContext, config: PosBatches, lake: Lakehouse, landing: LandingZone, alerts: AlertSink):
        """One row per store and product: latest snapshot minus the POS quantities sold since it.

        A `pos_merge` run (config `batches`) merges its micro-batches into the ledger exactly once
        and updates the pairs they touched; the daily run recomputes every pair.
        """
        audit: list[AuditEntry] = []
        if config.batches:
            merged = apply_batches(lake, landing, config.batches, context.log.warning, run_id=context.run.run_id)
            table = lake.read(POSITIONS) if lake.exists(POSITIONS) else pl.DataFrame(schema=POSITION_SCHEMA)
            written = table.join(merged.touched, on=list(PAIR), how="semi")
            version, metadata = lake.version(POSITIONS), {"mode": "stream", **_stream_metadata(merged)}
            if merged.ledger_written:
                audit.append(AuditEntry(LEDGER, "all", merged.inserted, "SUCCESS"))
                # The ledger is an external asset: this step is its only writer, so it reports it.
                context.log_event(dg.AssetMaterialization(
                    asset_key=LEDGER,
                    metadata={
                        "batches": sum(a.inserted > 0 for a in merged.applied),
                        "events": merged.inserted,
                        "delta_version": merged.ledger_version,
                    },
                ))
        else:
            table = written = recompute_positions(lake)
            with lake.failures_audited(context.run.run_id, POSITIONS, log=context.log):
                version, metadata = write_positions(lake, table, whole=True), {"mode": "recompute"}
        lake.audit(context.run.run_id, [*audit, AuditEntry(POSITIONS, "all", written.height, "SUCCESS")])
        yield dg.MaterializeResult(
            metadata={
                **metadata,
                "dagster/row_count": table.height,
                "delta_version": -1 if version is None else version,
                "table_uri": lake.display_uri(POSITIONS),
            }
        )
        yield checks.contract_result(("gold", "inventory_positions"), table).result
        columns = ["store_id", "product_id", "quantity_on_hand", "reorder_point"]
        low = table.filter(pl.col("is_below_reorder_point")).select(columns)
        # Alert on the pairs this run moved: a stream run every 30 s must not repeat the whole list.
        alerted = written.filter(pl.col("is_below_reorder_point")).select(columns)
        if alerted.height:
            alerts.send([Alert(
                LOW_STOCK, POSITIONS.to_user_string(), None,
                f"{alerted.height} store/product pairs below their reorder point",
                context.run.run_id, {"pairs": alerted.head(100).to_dicts()},
            )], context.log.warning)
        yield dg.AssetCheckResult(
            check_name=LOW_STOCK,
            passed=low.height == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "pairs_below_reorder_point": low.height,
                "pairs": dg.MetadataValue.md(checks.markdown(low.head(50))) if low.height else dg.MetadataValue.text("none"),
            },
        )

    @dg.asset(
        key=WINDOWS, group_name="gold", kinds={"polars", "delta"},
        # After the positions step, which is what writes the ledger in a stream run.
        deps=[LEDGER, POSITIONS],
        backfill_policy=SINGLE_RUN, retry_policy=RETRY, check_specs=check_specs_for(WINDOWS), **asset_attrs(WINDOWS),
    )
    def pos_sales_5min(context: dg.AssetExecutionContext, config: PosBatches, lake: Lakehouse):
        """Units sold and returned per store, product and 5-minute window, from the POS ledger.

        A `pos_merge` run refreshes only the windows its batches' events fall in (recounted from the
        whole ledger, so a window several batches share stays right); the daily run rebuilds all.
        """
        exists = lake.exists(LEDGER)
        if config.batches and exists and lake.exists(WINDOWS):
            start = pl.col("event_ts").dt.truncate("5m")
            touched = lake.scan(LEDGER).filter(pl.col("batch").is_in(config.batches)).select(start.alias("w")).unique()
            events = lake.scan(LEDGER).filter(start.is_in(touched.collect()["w"].implode())).collect()
            frame = sales_windows_5min(events)
            with lake.failures_audited(context.run.run_id, WINDOWS, log=context.log):
                version = lake.merge(WINDOWS, frame, on=("window_start", "store_id", "product_id")) if frame.height else lake.version(WINDOWS)
            lake.audit(context.run.run_id, [AuditEntry(WINDOWS, "all", frame.height, "SUCCESS")])
            yield dg.MaterializeResult(metadata={
                "mode": "stream", "windows_refreshed": frame.height, "delta_version": version, "table_uri": lake.display_uri(WINDOWS),
            })
        else:
            frame = sales_windows_5min(lake.read(LEDGER) if exists else pl.DataFrame(schema=POS_EVENT_SCHEMA))
            yield dg.Output(frame, metadata={"mode": "rebuild"})
        yield checks.contract_result(("gold", "pos_sales_5min"), frame).result

    return [ledger, inventory_positions, pos_sales_5min]
