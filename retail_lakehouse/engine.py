"""Where the row-level rules run: in this process on Polars (the default), or spread over Spark.

Every rule is written once, in Polars (`silver/rules.py`, `gold/star.py`), and neither engine
translates it. The Polars engine runs a long window's rule a month (or a hash group) at a time. The Spark engine reads the input table with Spark, splits it into groups by a hash of
a key and runs the same Polars function on each group in Spark's Python workers
(`groupBy(...).applyInArrow`): Spark owns the scale-out, Polars the work inside a group. A rule that
must see every version of a key (the latest version of an order line) is grouped by that key, so one
group holds all of them; what a rule needs whole (the dimensions a fact is keyed to) travels inside
the function, as Spark ships a broadcast.

Each group's results are written by the worker as Parquet to a staging folder and read by the
driver, which checks them and has delta-rs commit them (the Delta and ABFS jars cannot be had
here, PLATFORM.md "Spark"): the driver holds a run's output, not its input. An output that is a
daily table's rows as they are (`tables`) is written straight into the table's folder, a file per
day, and those files are what gets committed. Without a folder both reach (a remote cluster), the
results come back through Spark as Arrow.

`local[N]` by default; a Spark Connect URL (`sc://host:port`, also how Databricks Connect reaches a
cluster) by `RETAIL_LAKEHOUSE_SPARK_REMOTE`. The session starts on first use, so a run whose
assets never reach Spark never starts a JVM.
"""

import datetime as dt
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl

from retail_lakehouse.partitions import window_dates
from retail_lakehouse.storage import Lakehouse, StagedFile

# A rule as the engines run it: one group of the input in, named frames out.
Rule = Callable[[pl.DataFrame], Mapping[str, pl.DataFrame]]


@dataclass(frozen=True)
class Source:
    """The rows a rule reads: a table, and the window `[first, end)` of its Date column `column`
    (none: the whole table)."""

    key: dg.AssetKey
    column: str | None = None
    first: dt.date | None = None
    end: dt.date | None = None

    @classmethod
    def for_input(cls, context: dg.AssetExecutionContext, input_name: str, key: dg.AssetKey, column: str) -> "Source":
        """The window of `key` that the asset's partition mapping gives its input `input_name`."""
        return cls(key, column, *window_dates(context.asset_partitions_time_window_for_input(input_name)))

    def scan(self, lake: Lakehouse) -> pl.LazyFrame:
        return lake.scan(self.key, self.column, self.first, self.end)

    def schema(self, lake: Lakehouse) -> pl.Schema:
        return self.scan(lake).collect_schema()


class Outputs(dict):
    """A rule's outputs by name (Polars frames), and in `staged`, for an output the engine also
    wrote into its table's folder itself, those files, for the I/O manager to commit."""

    def __init__(self, frames: Mapping[str, pl.DataFrame], staged: Mapping[str, tuple[StagedFile, ...]] | None = None):
        super().__init__(frames)
        self.staged: dict[str, tuple[StagedFile, ...]] = dict(staged or {})


class Engine(dg.ConfigurableResource):
    """The `engine` resource: runs a rule over a source, grouped by `by` where the engine splits."""

    def map_groups(
        self, lake: Lakehouse, source: Source, by: Sequence[str], rule: Rule, tables: Mapping[str, tuple[dg.AssetKey, str]] | None = None
    ) -> Outputs:
        """`rule` over `source`. An engine that splits the input keeps rows with equal `by` values
        (text compared trimmed, as the rules compare keys) in one group, and concatenates what the
        groups return. `tables` names the outputs that are a partitioned table's rows as they are
        (output: the table's key and its Date column): an engine whose workers can write the
        table's files may do so (`Outputs.staged`)."""
        raise NotImplementedError


# What the Polars engine runs a rule over at a time. A rule's working memory is several times its
# input (a year of sales lines: 0.5 GB of input, 2 GB at the peak), so a long window runs in parts.
CHUNK_DAYS = 31
ROWS_PER_GROUP = 250_000


def _group_keys(frame_schema: Mapping[str, pl.DataType], by: Sequence[str]) -> list[pl.Expr]:
    """The grouping key of each row: text keys trimmed, empty as null, as the rules compare keys."""
    def key(c: str) -> pl.Expr:
        if frame_schema[c] == pl.String:
            trimmed = pl.col(c).str.strip_chars()
            return pl.when(trimmed == "").then(None).otherwise(trimmed).alias(c)
        return pl.col(c)

    return [key(c) for c in by]


def _concat(empty: Mapping[str, pl.DataFrame], parts: list[Mapping[str, pl.DataFrame]]) -> Outputs:
    # Vertical concatenation: a part whose output drifted from the rule's schema fails here.
    return Outputs({name: pl.concat([out, *(p[name] for p in parts)], how="vertical") for name, out in empty.items()})


class PolarsEngine(Engine):
    """The rule in this process, over the source in parts so that its working memory is bounded by
    `chunk_days` or `rows_per_group` rows, not by the window (the parts' outputs are still held
    together, for the checks and the write).

    When the rows of a group share a day of the source's date column (`by` includes it), the
    parts are months of that column, each read with partition pruning. Otherwise a source of more
    than `rows_per_group` rows is split by a hash of `by` (every version of a key in one part),
    spilled once to local Parquet files, and each part is read back in turn.
    """

    chunk_days: int = CHUNK_DAYS
    rows_per_group: int = ROWS_PER_GROUP

    def map_groups(
        self, lake: Lakehouse, source: Source, by: Sequence[str], rule: Rule, tables: Mapping[str, tuple[dg.AssetKey, str]] | None = None
    ) -> Outputs:
        scan = source.scan(lake)
        if not by:
            return Outputs(rule(scan.collect()))
        if source.column in by and source.first is not None and (source.end - source.first).days > self.chunk_days:
            empty = rule(pl.DataFrame(schema=scan.collect_schema()))
            parts = []
            lo = source.first
            while lo < source.end:
                hi = min(lo + dt.timedelta(days=self.chunk_days), source.end)
                # The one scan, narrowed: it reads the table's log once for all the months.
                parts.append(rule(scan.filter(pl.col(source.column).is_between(lo, hi, closed="left")).collect()))
                lo = hi
            return _concat(empty, parts)
        groups = -(-scan.select(pl.len()).collect().item() // self.rows_per_group)
        if groups <= 1:
            return Outputs(rule(scan.collect()))
        schema = scan.collect_schema()
        empty = rule(pl.DataFrame(schema=schema))
        bucket = (pl.struct(_group_keys(schema, by)).hash() % groups).alias("_group")
        # In the temporary directory (TMPDIR): local disk even when the lake is on ADLS.
        with tempfile.TemporaryDirectory(prefix="retail-lakehouse-groups-") as spill:
            # lz4: the files live for one step; writing them fast matters more than their size.
            scan.with_columns(bucket).sink_parquet(
                pl.PartitionBy(spill, key="_group", include_key=False), compression="lz4", mkdir=True
            )
            parts = [rule(pl.read_parquet(folder).select(list(schema))) for folder in sorted(Path(spill).iterdir())]
        return _concat(empty, parts)


def build_engine(
    engine: str, master: str | None = None, remote: str | dg.EnvVar | None = None, driver_memory: str = "2g", staging: str | None = None
) -> Engine:
    if engine == "spark":
        # Imported only here: a Polars deployment never imports pyspark.
        from retail_lakehouse.spark import build_spark_engine

        return build_spark_engine(master, remote, driver_memory, staging)
    return PolarsEngine()
