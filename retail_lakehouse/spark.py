"""The Spark engine (`RETAIL_LAKEHOUSE_ENGINE=spark`): the Polars rules run per key group in Spark's
Python workers; see `retail_lakehouse/engine.py` for the design and README "Spark" for clusters.

The session is dagster-pyspark's `LazyPySparkResource`: it starts on the first rule that runs, so
definitions load and runs that never reach an engine-run asset start no JVM.
"""

import contextlib
import io
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import dagster as dg
import polars as pl
import pyarrow as pa
from dagster_pyspark import LazyPySparkResource
from pydantic import Field, PrivateAttr

from retail_lakehouse.engine import Engine, Outputs, Rule, Source
from retail_lakehouse.settings import SettingsError
from retail_lakehouse.storage import Lakehouse, StagedFile, stored_schema

# What every group returns to the driver, a row per file or frame: an output's rows in a Parquet
# file the worker wrote (`path`) or inline as Arrow IPC (`ipc`); for a file in a table's folder,
# its day, its path there, its size and its rows.
_PACKED = {
    "output": pa.string(), "path": pa.string(), "ipc": pa.binary(), "day": pa.date32(),
    "table_path": pa.string(), "size": pa.int64(), "rows": pa.int64(),
}


def spark_config() -> dict[str, str]:
    """The session settings that make Spark's results equal Polars': UTC session time zone,
    microsecond timestamps, Arrow transfer. A local master listens on 127.0.0.1 only."""
    return {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
    }


def _master_config(master: str | None, driver_memory: str) -> dict[str, str]:
    """What only a session this process starts can set (a Connect server's are the cluster's)."""
    master = master or "local[2]"
    conf = {
        "spark.master": master,
        # Set before the driver's JVM starts, which is when the session first starts.
        "spark.driver.memory": driver_memory,
        "spark.ui.enabled": "false",
        # Without a staging folder the groups' results travel through the driver: a window's output.
        "spark.driver.maxResultSize": "0",
    }
    if master.startswith("local"):
        conf.update({
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
            # Few and small groups: the default 200 shuffle partitions would mostly be empty tasks.
            "spark.sql.shuffle.partitions": "8",
        })
    return conf


class SparkEngine(Engine):
    """Spark distributes each rule's groups to its Python workers (see the module docstring)."""

    # The session of a master this process starts (dagster-pyspark's lazy resource).
    spark: LazyPySparkResource
    # A Spark Connect URL instead (`sc://host:port`, Databricks Connect's with its token): given
    # through EnvVar, so the UI shows the variable's name, never the URL.
    remote: str | None = None
    groups: int = Field(default=8, description="Fewest hash groups a rule's input is split into (at least one per data file); each is one Polars frame in a worker.")
    staging: str | None = Field(
        default=None,
        description="A folder the workers write each group's results to as Parquet and this process reads them from. "
        "Unset: a temporary folder for a master this process starts; through Spark as Arrow for a Spark Connect server.",
    )
    _remote_session: object = PrivateAttr(default=None)

    def session(self):
        if self.remote:
            if self._remote_session is None:
                from pyspark.sql import SparkSession

                self._remote_session = SparkSession.builder.remote(self.remote).config(map=self.spark.spark_config).getOrCreate()
            return self._remote_session
        # Local workers are this interpreter, so they import the same Polars and rules.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        return self.spark.spark_session

    def read(self, lake: Lakehouse, source: Source):
        """The source as a Spark DataFrame, or None when it has no data files."""
        from pyspark.sql import functions as F

        files = lake.file_uris(source.key, source.column, source.first, source.end)
        if not files:
            return None
        frame = self.session().read.option("basePath", lake.table_uri(source.key)).parquet(*files)
        if source.column:
            day = F.col(source.column)
            frame = frame.filter((day >= F.lit(source.first)) & (day < F.lit(source.end)))
        return frame

    def map_groups(
        self, lake: Lakehouse, source: Source, by: Sequence[str], rule: Rule, tables: Mapping[str, tuple[dg.AssetKey, str]] | None = None
    ) -> Outputs:
        from pyspark.sql import functions as F
        from pyspark.sql.pandas.types import from_arrow_schema
        from pyspark.sql.types import StringType

        schema = source.schema(lake)
        # The rule over no rows gives every output's schema, and the outputs when there is no data.
        empty = dict(rule(pl.DataFrame(schema=schema)))
        frame = self.read(lake, source)
        if frame is None:
            return Outputs(empty)

        def key(c: str):
            column = F.col(c)
            if isinstance(frame.schema[c].dataType, StringType):
                # The rules trim text keys (Polars' strip_chars: Unicode whitespace), so " A1" and "A1" share a group.
                column = F.nullif(F.regexp_replace(column, r"(?U)^\s+|\s+$", ""), F.lit(""))
            return column

        # At least a group per data file (a day's drop, a day of a table), so a group stays the size
        # of a day or so however long the window: its results travel as one Arrow value (< 2 GB).
        groups = max(self.groups, len(frame.inputFiles()))
        # Rows that share a day of the source's partitions share every key that includes it: whole
        # days to a group, so a day's output is one file, not one per group.
        by = [source.column] if source.column in by else list(by)
        bucket = F.pmod(F.hash(*[key(c) for c in by]), F.lit(groups)) if by else F.lit(0)
        with self._staging_folder() as folder:
            # The workers write a table's files only where they and this process share the disk.
            shared_disk = folder is not None and not self.remote
            targets = {
                name: (lake.table_uri(k), column, dict(stored_schema(empty[name].schema))) for name, (k, column) in (tables or {}).items()
                if shared_disk and "://" not in lake.table_uri(k)
            }
            run = _group_function(rule, dict(schema), folder, targets)
            packed = frame.groupBy(bucket.alias("_group")).applyInArrow(run, from_arrow_schema(pa.schema(_PACKED))).toArrow()
            parts: dict[str, list[pl.DataFrame]] = {name: [out] for name, out in empty.items()}
            staged: dict[str, list[StagedFile]] = {name: [] for name in targets}
            for row in packed.to_pylist():
                name = row["output"]
                if row["table_path"] is not None:
                    column = targets[name][1]
                    staged[name].append(StagedFile(row["day"], row["table_path"], row["size"], row["rows"]))
                    part = pl.read_parquet(row["path"]).with_columns(pl.lit(row["day"]).alias(column))
                    # Back to the rule's own types (the file holds the table's: no unsigned, no categorical).
                    part = part.select(empty[name].columns).cast(dict(empty[name].schema))
                elif row["path"] is not None:
                    part = pl.read_parquet(row["path"])
                else:
                    part = pl.read_ipc(io.BytesIO(row["ipc"]))
                parts[name].append(part)
        # Vertical concatenation: a group whose output drifted from the rule's schema fails here.
        frames = {name: pl.concat(frames, how="vertical") for name, frames in parts.items()}
        return Outputs(frames, {name: tuple(files) for name, files in staged.items()})

    @contextlib.contextmanager
    def _staging_folder(self) -> Iterator[str | None]:
        """A folder for one rule's results, removed once they are read; None sends them through Spark.

        Through Spark, every result crosses the JVM twice (worker to executor, executor to driver)
        and the driver's heap holds the window's output at once: a year of silver inventory at
        scale 10 took an 11 GB heap beside a 13 GB Python driver. Written by the workers and read
        here, a result is one Parquet file per group, read straight into Polars.
        """
        if self.remote and not self.staging:
            yield None
            return
        if self.staging:
            Path(self.staging).mkdir(parents=True, exist_ok=True)
        folder = tempfile.mkdtemp(prefix="retail-lakehouse-spark-", dir=self.staging)
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def _group_function(
    rule: Rule, schema: Mapping[str, pl.DataType], folder: str | None, targets: Mapping[str, tuple[str, str, Mapping[str, pl.DataType]]]
):
    # applyInArrow tells an Arrow function from a pandas one by its type hints: a plain function, not a partial.
    def run_group(table: pa.Table) -> pa.Table:
        """In a Spark worker: one group, as the Polars engine would see it (same columns, order
        and types), through the rule. An output in `targets` (its table's folder, Date column and
        stored types) is written into the table's folder, a file per day
        (`<column>=<day>/part-<id>.parquet`, without the column, as delta-rs lays out its own),
        for the driver to read and commit; the rest (and rows without a day) to `folder` as
        Parquet, or packed as Arrow IPC without one."""
        frame = pl.from_arrow(table).select(list(schema)).cast(dict(schema))
        rows = []
        for name, out in rule(frame).items():
            if name in targets:
                uri, column, stored = targets[name]
                for (day,), part in out.filter(pl.col(column).is_not_null()).group_by(column):
                    relative = f"{column}={day.isoformat()}/part-{uuid.uuid4().hex}.parquet"
                    path = os.path.join(uri, relative)
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    # In the types the table stores, as delta-rs would cast them when writing.
                    part.cast(stored).drop(column).write_parquet(path)
                    rows.append((name, path, None, day, relative, os.path.getsize(path), part.height))
                out = out.filter(pl.col(column).is_null())
                if out.is_empty():
                    continue
            if folder is None:
                sink = io.BytesIO()
                out.write_ipc(sink)
                rows.append((name, None, sink.getvalue(), None, None, None, None))
            else:
                # lz4: the file lives until the driver has read it; writing it fast matters more.
                path = os.path.join(folder, f"{name}-{uuid.uuid4().hex}.parquet")
                out.write_parquet(path, compression="lz4")
                rows.append((name, path, None, None, None, None, None))
        columns = list(zip(*rows)) if rows else [()] * 7
        return pa.table({
            name: pa.array(values, kind) for (name, kind), values in zip(_PACKED.items(), columns)
        })

    return run_group


def _require_pandas() -> None:
    # pyspark's grouped Arrow API (`applyInArrow`, what `map_groups` runs) refuses to start without
    # pandas, although no pandas code runs; said here, when the definitions load, and not as a
    # PySparkImportError in the first step of a run.
    try:
        import pandas  # noqa: F401
    except ImportError:
        raise SettingsError(
            "RETAIL_LAKEHOUSE_ENGINE=spark needs pandas, which pyspark's grouped Arrow API checks for: "
            "pip install -e '.[spark]' (or '.[spark-connect]' for a Spark Connect server)"
        ) from None


def build_spark_engine(
    master: str | None = None, remote: str | dg.EnvVar | None = None, driver_memory: str = "2g", staging: str | None = None
) -> SparkEngine:
    _require_pandas()
    conf = spark_config() if remote else {**spark_config(), **_master_config(master, driver_memory)}
    return SparkEngine(spark=LazyPySparkResource(spark_config=conf), remote=remote, staging=staging)
