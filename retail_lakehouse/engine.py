"""Where the row-level rules run: in this process on Polars (the default), or spread over Spark.

Every rule is written once, in Polars (`silver/rules.py`, `gold/star.py`), and neither engine
translates it. The Spark engine reads the input table with Spark, splits it into groups by a hash of
a key and runs the same Polars function on each group in Spark's Python workers
(`groupBy(...).applyInArrow`): Spark owns the scale-out, Polars the work inside a group. A rule that
must see every version of a key (the latest version of an order line) is grouped by that key, so one
group holds all of them; what a rule needs whole (the dimensions a fact is keyed to) travels inside
the function, as Spark ships a broadcast.

Each group's results come back to the driver as Arrow, where delta-rs commits them (the Delta and
ABFS jars cannot be had here, PLATFORM.md "Spark"): the driver holds a run's output, not its input.

`local[N]` by default; a Spark Connect URL (`sc://host:port`, also how Databricks Connect reaches a
cluster) by `RETAIL_LAKEHOUSE_SPARK_REMOTE`. The session starts on first use, so a run whose
assets never reach Spark never starts a JVM.
"""

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import dagster as dg
import polars as pl

from retail_lakehouse.partitions import window_dates
from retail_lakehouse.storage import Lakehouse

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


class Engine(dg.ConfigurableResource):
    """The `engine` resource: runs a rule over a source, grouped by `by` where the engine splits."""

    def map_groups(self, lake: Lakehouse, source: Source, by: Sequence[str], rule: Rule) -> dict[str, pl.DataFrame]:
        """`rule` over `source`. An engine that splits the input keeps rows with equal `by` values
        (text compared trimmed, as the rules compare keys) in one group, and concatenates what the
        groups return."""
        raise NotImplementedError


class PolarsEngine(Engine):
    """The rule once, over the whole source, in this process."""

    def map_groups(self, lake: Lakehouse, source: Source, by: Sequence[str], rule: Rule) -> dict[str, pl.DataFrame]:
        return dict(rule(source.scan(lake).collect()))


def build_engine(engine: str, master: str | None = None, remote: str | dg.EnvVar | None = None) -> Engine:
    if engine == "spark":
        # Imported only here: a Polars deployment never imports pyspark.
        from retail_lakehouse.spark import build_spark_engine

        return build_spark_engine(master, remote)
    return PolarsEngine()
