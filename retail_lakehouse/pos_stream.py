"""The streaming path (seed 004 hot path): POS micro-batches merged into `gold/inventory_positions`
exactly once, by a sensor that requests small runs.

Exactly once, even if a run dies after writing and before the sensor's cursor moves:
1. the batch's events are MERGEd into `gold/pos_ledger` on `event_id` (insert when not matched), so
   a replayed or re-delivered batch inserts nothing; the commit also carries a Delta application
   transaction naming the batch, so a replay is recognised without reading the ledger;
2. the positions of the (store, product) pairs the batch touched are recomputed from the latest
   snapshot and the ledger, and MERGEd into `gold/inventory_positions`. A recomputation is
   idempotent, so a crash between 1 and 2 is repaired by the replay.
The daily `gold/inventory_positions` asset recomputes every position from the same two inputs.
"""

import datetime as dt
import hashlib
import json
import urllib.request
from collections.abc import Callable

import dagster as dg
import polars as pl
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

from retail_lakehouse.bronze.transforms import MalformedDrop, read_jsonl_drop
from retail_lakehouse.gold.positions import POS_EVENT_SCHEMA, POSITION_SCHEMA, clean_pos_events, positions, sales_windows_5min
from retail_lakehouse.landing import POS_COLUMNS, Drop, LandingZone
from retail_lakehouse.policies import RETRY, SINGLE_RUN
from retail_lakehouse.storage import DeltaIOManager, table_exists

LEDGER = dg.AssetKey(["gold", "pos_ledger"])
POSITIONS = dg.AssetKey(["gold", "inventory_positions"])
INVENTORY = dg.AssetKey(["silver", "inventory"])
POS_JOB = "pos_merge"
LOW_STOCK = "low_stock"
# A sensor tick hands each run at most this many micro-batches, so a backlog becomes several short
# runs instead of one long one.
MAX_BATCHES_PER_RUN = 8


def _app_id(batch: str) -> str:
    return f"retail_lakehouse:pos:{batch}"


def _read(io: DeltaIOManager, key: dg.AssetKey) -> pl.DataFrame | None:
    uri, options = io.table_uri(key), io.storage_options(key)
    return pl.read_delta(uri, storage_options=options or None) if table_exists(uri, options) else None


def apply_batch(io: DeltaIOManager, landing: LandingZone, batch: str, log: Callable[[str], None] = lambda _: None) -> dict:
    """Merge one micro-batch (`pos_events/<file>`) into the ledger and the positions, exactly once."""
    source, _, name = batch.partition("/")
    drop = Drop.from_name(source, name)
    if drop is None or source != "pos_events":
        raise ValueError(f"{batch} is not a POS micro-batch name (pos_events/pos_events_YYYYMMDD_hhmmss_<seq>.jsonl)")
    try:
        raw = read_jsonl_drop(landing.read(drop), POS_COLUMNS)
    except MalformedDrop as err:
        log(f"rejected POS batch {batch}: {err.reason}")
        return {"batch": batch, "status": "rejected", "reason": err.reason}
    events, rejected = clean_pos_events(raw, batch)
    for row in rejected.iter_rows(named=True):
        log(f"rejected POS event in {batch} row {row['_row_number']}: {row['reject_reasons']}")

    ledger_uri, options = io.table_uri(LEDGER), io.storage_options(LEDGER)
    commit = CommitProperties(app_transactions=[Transaction(app_id=_app_id(batch), version=1)])
    status = "merged"
    if not table_exists(ledger_uri, options):
        write_deltalake(ledger_uri, events.to_arrow(), mode="append", commit_properties=commit, storage_options=options or None)
    elif DeltaTable(ledger_uri, storage_options=options or None).transaction_version(_app_id(batch)) is not None:
        status = "already applied"
    elif events.height:
        (
            DeltaTable(ledger_uri, storage_options=options or None)
            .merge(events.to_arrow(), predicate="t.event_id = s.event_id", source_alias="s", target_alias="t", commit_properties=commit)
            .when_not_matched_insert_all()
            .execute()
        )
    # Always recompute the touched positions: it is idempotent and repairs a run that died here.
    touched = events.select("store_id", "product_id").unique()
    updated = _merge_positions(io, touched)
    return {"batch": batch, "status": status, "events": events.height, "rejected_rows": rejected.height, "positions_updated": updated}


def _merge_positions(io: DeltaIOManager, touched: pl.DataFrame) -> int:
    inventory, ledger = _read(io, INVENTORY), _read(io, LEDGER)
    if inventory is None or ledger is None or touched.height == 0:
        return 0
    fresh = positions(
        inventory.join(touched, on=["store_id", "product_id"], how="semi"),
        ledger.join(touched, on=["store_id", "product_id"], how="semi"),
    )
    uri, options = io.table_uri(POSITIONS), io.storage_options(POSITIONS)
    if not table_exists(uri, options):
        write_deltalake(uri, fresh.to_arrow(), mode="append", storage_options=options or None)
    elif fresh.height:
        (
            DeltaTable(uri, storage_options=options or None)
            .merge(fresh.to_arrow(), predicate="t.store_id = s.store_id AND t.product_id = s.product_id", source_alias="s", target_alias="t")
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute()
        )
    return fresh.height


class PosBatches(dg.Config):
    batches: list[str]


@dg.op(retry_policy=RETRY)
def merge_pos_batches(context: dg.OpExecutionContext, config: PosBatches, landing: LandingZone, io_manager: dg.ResourceParam[DeltaIOManager]):
    """Merge the requested POS micro-batches, in delivery order, into the ledger and the positions."""
    results = [apply_batch(io_manager, landing, b, context.log.warning) for b in sorted(config.batches, key=_delivery_order)]
    yield dg.AssetMaterialization(
        asset_key=POSITIONS,
        description="POS micro-batches merged",
        metadata={
            "batches": len(results),
            "merged": sum(r["status"] == "merged" for r in results),
            "already_applied": sum(r["status"] == "already applied" for r in results),
            "events": sum(r.get("events", 0) for r in results),
            "positions_updated": sum(r.get("positions_updated", 0) for r in results),
        },
    )
    yield dg.Output(None)


@dg.job(name=POS_JOB, executor_def=dg.in_process_executor, description="Merge POS micro-batches into inventory positions, exactly once.")
def pos_merge_job():
    merge_pos_batches()


def _delivery_order(batch: str):
    source, _, name = batch.partition("/")
    drop = Drop.from_name(source, name)
    return (drop.business_date, drop.stamp) if drop else (dt.date.max, name)


def build_pos_sensor(max_batches: int = MAX_BATCHES_PER_RUN) -> dg.SensorDefinition:
    @dg.sensor(
        name="pos_stream",
        job=pos_merge_job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="New or re-delivered POS micro-batches → small exactly-once merge runs.",
    )
    def pos_stream(context: dg.SensorEvaluationContext, landing: LandingZone):
        # The cursor is the set of (batch, fingerprint) seen, not a high-water mark, so a late or
        # out-of-order batch is still picked up.
        seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        current = landing.fingerprints("pos_events")
        new = sorted((b for b, fp in current.items() if seen.get(b) != fp), key=_delivery_order)
        cursor = json.dumps({**seen, **current}, sort_keys=True)
        if not new:
            return dg.SensorResult(skip_reason="no new POS batches", cursor=cursor)
        requests = []
        for i in range(0, len(new), max_batches):
            chunk = new[i : i + max_batches]
            digest = hashlib.sha256(json.dumps([(b, current[b]) for b in chunk]).encode()).hexdigest()[:16]
            requests.append(dg.RunRequest(run_key=f"pos-{digest}", run_config={"ops": {"merge_pos_batches": {"config": {"batches": chunk}}}}))
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    return pos_stream


def send_alert(message: str, payload: dict, log: Callable[[str], None], webhook_url: str | None) -> None:
    """The alert sink: the log always; a webhook too when one is configured (failures only logged)."""
    log(message)
    if not webhook_url:
        return
    request = urllib.request.Request(webhook_url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5):
            pass
    except OSError as err:
        log(f"alert webhook failed: {err}")


def build_inventory_assets(webhook_url: str | None = None) -> list:
    ledger = dg.AssetSpec(
        LEDGER,
        group_name="gold",
        kinds={"delta"},
        description="Every POS event applied by the stream, one row per event_id (written by the pos_stream sensor's runs).",
    )

    @dg.asset(
        key=POSITIONS,
        group_name="gold",
        kinds={"polars", "delta"},
        ins={"inventory": dg.AssetIn(INVENTORY)},
        deps=[LEDGER],
        backfill_policy=SINGLE_RUN,
        retry_policy=RETRY,
        check_specs=[dg.AssetCheckSpec(LOW_STOCK, asset=POSITIONS, description="Store/product pairs below their reorder point (WARN).")],
    )
    def inventory_positions(context: dg.AssetExecutionContext, inventory: pl.LazyFrame, io_manager: dg.ResourceParam[DeltaIOManager]):
        """One row per store and product: latest snapshot minus the POS quantities sold since it."""
        events = _read(io_manager, LEDGER)
        frame = positions(inventory.collect(), events if events is not None else pl.DataFrame(schema=POS_EVENT_SCHEMA))
        yield dg.Output(frame)
        low = frame.filter(pl.col("is_below_reorder_point")).select("store_id", "product_id", "quantity_on_hand", "reorder_point")
        if low.height:
            send_alert(
                f"low stock: {low.height} store/product pairs below their reorder point",
                {"alert": "low_stock", "pairs": low.head(100).to_dicts()},
                context.log.warning,
                webhook_url,
            )
        yield dg.AssetCheckResult(
            check_name=LOW_STOCK,
            passed=low.height == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"pairs_below_reorder_point": low.height, "pairs": dg.MetadataValue.json(low.head(50).to_dicts())},
        )

    @dg.asset(key=["gold", "pos_sales_5min"], group_name="gold", kinds={"polars", "delta"}, deps=[LEDGER], backfill_policy=SINGLE_RUN, retry_policy=RETRY)
    def pos_sales_5min(io_manager: dg.ResourceParam[DeltaIOManager]) -> pl.DataFrame:
        """Units sold and returned per store, product and 5-minute window, from the POS ledger."""
        events = _read(io_manager, LEDGER)
        return sales_windows_5min(events if events is not None else pl.DataFrame(schema=POS_EVENT_SCHEMA))

    return [ledger, inventory_positions, pos_sales_5min]


__all__ = ["POSITION_SCHEMA", "apply_batch", "build_inventory_assets", "build_pos_sensor", "pos_merge_job", "send_alert"]
