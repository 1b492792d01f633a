"""Bronze assets: one per source, daily partitions by `drop_date`, plus `bronze/rejected_files`."""


import datetime as dt

import dagster as dg
import polars as pl

from retail_lakehouse.bronze.transforms import (
    MalformedDrop,
    empty_bronze,
    read_csv_drop,
    read_jsonl_drop,
    tokenize_cards,
    with_lineage,
)
from retail_lakehouse.landing import ALL_SOURCES, DAILY_SOURCES, POS_COLUMNS, SOURCE_COLUMNS, Drop, LandingZone
from retail_lakehouse.partitions import days_in, window_dates
from retail_lakehouse.policies import RETRY, SINGLE_RUN
from retail_lakehouse.resources import CardTokenizer
from retail_lakehouse.storage import PARTITION_COLUMN


def _columns(source: str) -> tuple[str, ...]:
    return POS_COLUMNS if source == "pos_events" else SOURCE_COLUMNS[source]


def parse_drop(landing: LandingZone, drop: Drop) -> pl.DataFrame:
    """One drop as text columns; raises MalformedDrop if the file cannot be loaded as a whole."""
    data = landing.read(drop)
    if drop.source == "pos_events":
        return read_jsonl_drop(data, POS_COLUMNS)
    return read_csv_drop(data, SOURCE_COLUMNS[drop.source])


def _require_daily_drops(source: str, drops: list[Drop], first: dt.date, end: dt.date, landing: LandingZone) -> None:
    delivered = {d.business_date for d in drops}
    missing = [day for day in days_in(first, end) if day not in delivered]
    if missing:
        shown = ", ".join(d.isoformat() for d in missing[:10]) + (" …" if len(missing) > 10 else "")
        raise dg.Failure(
            description=(
                f"no {source} drop for {shown}: expected {source}_YYYYMMDD_hhmmss.csv for that business "
                f"date in {landing.location(source)}"
            ),
            metadata={"source": source, "missing_dates": [d.isoformat() for d in missing]},
        )


def build_bronze_asset(source: str, partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    tokenize = "card_number" in _columns(source)

    @dg.asset(
        key=["bronze", source],
        group_name="bronze",
        partitions_def=partitions_def,
        backfill_policy=SINGLE_RUN,
        retry_policy=RETRY,
        kinds={"polars", "delta"},
        metadata={PARTITION_COLUMN: "drop_date"},
        description=(
            f"Raw `{source}` drops as delivered: one row per data row of each file of the drop date, "
            "every column as text, plus source file, row number and ingestion time."
            + (" Card numbers are replaced by a keyed token and the last four digits." if tokenize else "")
        ),
    )
    def _bronze(context: dg.AssetExecutionContext, landing: LandingZone, card_tokenizer: CardTokenizer) -> pl.DataFrame:
        first, end = window_dates(context.partition_time_window)
        drops = landing.list_drops(source, first, end)
        if source in DAILY_SOURCES:
            _require_daily_drops(source, drops, first, end, landing)
        ingested_at = dt.datetime.now(dt.timezone.utc)
        key = card_tokenizer.key_bytes() if tokenize else b""
        frames, rejected = [], []
        for drop in drops:
            try:
                frame = parse_drop(landing, drop)
            except MalformedDrop as e:
                # Recorded with its reason in bronze/rejected_files; the rest of the partition loads.
                context.log.warning(f"rejected {drop.path}: {e.reason}")
                rejected.append(drop.path)
                continue
            if tokenize:
                frame = tokenize_cards(frame, key)
            frames.append(with_lineage(frame, drop.path, drop.business_date, ingested_at))
        out = pl.concat(frames, how="vertical") if frames else empty_bronze(_columns(source))
        context.add_output_metadata(
            {"files_loaded": len(frames), "files_rejected": len(rejected), "rejected_files": rejected}
        )
        return out

    return _bronze


REJECTED_SCHEMA = {
    "source": pl.String,
    "_source_file": pl.String,
    "reason": pl.String,
    "_ingested_at": pl.Datetime("us", "UTC"),
    "drop_date": pl.Date,
}


def build_rejected_files_asset(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=["bronze", "rejected_files"],
        group_name="bronze",
        partitions_def=partitions_def,
        backfill_policy=SINGLE_RUN,
        retry_policy=RETRY,
        kinds={"polars", "delta"},
        metadata={PARTITION_COLUMN: "drop_date"},
    )
    def rejected_files(context: dg.AssetExecutionContext, landing: LandingZone) -> pl.DataFrame:
        """Drops that could not be loaded as a whole, one row per file, with the reason.

        Runs the same parser the bronze assets run, so a file is listed here exactly when its
        bronze asset skipped it.
        """
        first, end = window_dates(context.partition_time_window)
        ingested_at = dt.datetime.now(dt.timezone.utc)
        rows = []
        for source in ALL_SOURCES:
            for drop in landing.list_drops(source, first, end):
                try:
                    parse_drop(landing, drop)
                except MalformedDrop as e:
                    rows.append((source, drop.path, e.reason, ingested_at, drop.business_date))
        return pl.DataFrame(rows, schema=REJECTED_SCHEMA, orient="row")

    return rejected_files


def build_bronze_assets(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [build_bronze_asset(s, partitions_def) for s in ALL_SOURCES] + [build_rejected_files_asset(partitions_def)]
