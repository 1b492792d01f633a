"""Serving assets: the star schema and the seed 000 §9 reports synced to a SQL database (seed 000 §1.4).

`serving/<table>` depends on `gold/<table>`, with its partitions: a run reads the gold window through
the `lake` resource and replaces exactly that window in the SQL table (`sync.replace_window`); an
unpartitioned table is replaced whole. The `serving` job runs them; the `serve_gold` sensor starts it
after every successful `lakehouse` run, for the window that run wrote, plus any older days of a
table that run rewrote outside its window (fact_sales re-keyed for late-arriving members).

The database is the `sql` resource, whose URL comes from `RETAIL_LAKEHOUSE_SQL_URL` through
`dg.EnvVar`: the UI shows the variable's name, the logs the URL with its password masked, the
metadata only the database, schema and table names. Without that variable `build_defs` leaves all of
this out (`definitions.py`).
"""


import datetime as dt
from collections.abc import Iterable, Mapping

import dagster as dg
import sqlalchemy as sa
from pydantic import Field, PrivateAttr

from retail_lakehouse import catalog
from retail_lakehouse.orchestration import range_tags
from retail_lakehouse.partitions import RANGE_END_TAG, RANGE_START_TAG, days_in, parse_partition_key, window_dates
from retail_lakehouse.policies import RETRY, SINGLE_RUN
from retail_lakehouse.serving import sync
from retail_lakehouse.settings import SQL_URL_VARIABLE
from retail_lakehouse.specs import column_schema, description, tags
from retail_lakehouse.storage import AuditEntry, Lakehouse

GROUP = "serving"
SERVING_JOB = "serving"
# What seed 000 §1.4 syncs and Power BI reads (§1.5): the star schema, its daily aggregate, and the
# §9 reports. The seed 004 analytics stay in the lake (`make sql` reads them there).
SEED_REPORTS = ("sales_performance", "customer_lifetime_value", "product_return_analysis")
SERVED = (*catalog.names(catalog.GOLD, (catalog.DIMENSION, catalog.FACT, catalog.AGGREGATE)), *SEED_REPORTS)
_PARTITION_TAG = "dagster/partition"


def serving_key(name: str) -> dg.AssetKey:
    return dg.AssetKey([GROUP, name])


class SqlDatabase(dg.ConfigurableResource):
    """The serving database, by SQLAlchemy URL (Postgres locally, Azure SQL on Azure: `sync`'s docstring)."""

    url: str = Field(description=f"SQLAlchemy URL; set {SQL_URL_VARIABLE}, which reaches here through EnvVar.")
    schema_name: str | None = Field(default=sync.SCHEMA, description="Schema of the served tables; null for databases without schemas.")
    _engine: sa.Engine | None = PrivateAttr(default=None)

    def engine(self) -> sa.Engine:
        if self._engine is None:
            self._engine = sync.create_engine(self.url)
        return self._engine

    def target(self) -> str:
        """Where the tables go, password masked: what a log line may show."""
        return sync.masked(self.url)

    def table_name(self, entry: catalog.Table) -> str:
        """`database.schema.table`, Dagster's `dagster/table_name` convention (no host, no user)."""
        database = sync.parse_url(self.url).database
        return ".".join(p for p in (database, self.schema_name, entry.name) if p)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def _serving_asset(entry: catalog.Table, partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    gold = dg.AssetKey(list(entry.key))
    how = "each run replaces its window of days" if entry.partition else "each run replaces it whole"

    @dg.asset(
        key=serving_key(entry.name),
        deps=[gold],
        group_name=GROUP,
        kinds={"polars", "sqlalchemy"},
        partitions_def=partitions_def if entry.partition else None,
        backfill_policy=SINGLE_RUN,
        retry_policy=RETRY,
        description=f"gold/{entry.name} in the serving database as {sync.qualified_name(entry)} ({how}). {description(gold)}",
        owners=[entry.owner],
        tags={**tags(gold), "layer": GROUP},
        metadata={"dagster/column_schema": column_schema(gold), "sql_table": sync.qualified_name(entry)},
    )
    def serve(context: dg.AssetExecutionContext, lake: Lakehouse, sql: SqlDatabase) -> dg.MaterializeResult:
        context.log.info(f"syncing gold/{entry.name} to {sql.target()}")
        if entry.partition:
            first, end = window_dates(context.partition_time_window)
            frame = lake.scan(gold, entry.partition, first, end).collect()
            last = end - dt.timedelta(days=1)
            partitions = f"{first}..{last}"
            with lake.failures_audited(context.run.run_id, context.asset_key, partitions, context.log):
                rows = sync.replace_window(sql.engine(), entry, frame, first, last, sql.schema_name)
            per_day = dict(frame.group_by(entry.partition).len().iter_rows())
            # Each day's materialization carries its own rows, as the gold tables' do.
            for day in days_in(first, end):
                context.add_asset_metadata({"dagster/row_count": per_day.get(day, 0)}, partition_key=day.isoformat())
        else:
            partitions = "all"
            frame = lake.scan(gold).collect()
            with lake.failures_audited(context.run.run_id, context.asset_key, partitions, context.log):
                rows = sync.replace_whole(sql.engine(), entry, frame, sql.schema_name)
        lake.audit(context.run.run_id, [AuditEntry(context.asset_key, partitions, rows, "SUCCESS")])
        metadata = {"rows_synced": rows, "sql_table": sync.qualified_name(entry, sql.schema_name), "dagster/table_name": sql.table_name(entry)}
        if not entry.partition:
            metadata["dagster/row_count"] = rows
        return dg.MaterializeResult(metadata=metadata)

    return serve


def build_serving_assets(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [_serving_asset(catalog.table(catalog.GOLD, name), partitions_def) for name in SERVED]


def _run_window(run_tags: Mapping[str, str]) -> tuple[dt.date, dt.date] | None:
    """The days (first, last) a run covered, from its range or single-partition tags."""
    if RANGE_START_TAG in run_tags and RANGE_END_TAG in run_tags:
        return parse_partition_key(run_tags[RANGE_START_TAG]), parse_partition_key(run_tags[RANGE_END_TAG])
    if _PARTITION_TAG in run_tags:
        day = parse_partition_key(run_tags[_PARTITION_TAG])
        return day, day
    return None


def _blocks(days: Iterable[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Consecutive days as (first, last) spans."""
    spans: list[tuple[dt.date, dt.date]] = []
    for day in sorted(set(days)):
        if spans and day == spans[-1][1] + dt.timedelta(days=1):
            spans[-1] = (spans[-1][0], day)
        else:
            spans.append((day, day))
    return spans


def serving_requests(run_id: str, run_tags: Mapping[str, str], materialized: Mapping[str, set[str | None]]) -> list[dg.RunRequest]:
    """The serving runs that follow a lakehouse run: one over the run's window for every served
    table it materialized, and one per span of days a table got outside that window.

    `materialized` maps a gold table name to the partition keys the run materialized (None for an
    unpartitioned table).
    """
    window = _run_window(run_tags)
    in_window: list[dg.AssetKey] = []
    requests: list[dg.RunRequest] = []
    for name in SERVED:
        if name not in materialized:
            continue
        if catalog.table(catalog.GOLD, name).partition is None:
            in_window.append(serving_key(name))
            continue
        days = {parse_partition_key(p) for p in materialized[name] if p is not None}
        inside = {d for d in days if window and window[0] <= d <= window[1]}
        if inside:
            in_window.append(serving_key(name))
        for first, last in _blocks(days - inside):
            requests.append(dg.RunRequest(
                run_key=f"{run_id}:{name}:{first}", asset_selection=[serving_key(name)], tags=range_tags(first, last),
            ))
    if in_window:
        requests.insert(0, dg.RunRequest(run_key=run_id, asset_selection=in_window, tags=range_tags(*window) if window else {}))
    return requests


def build_serving_sensor(lakehouse_job, serving_job) -> dg.SensorDefinition:
    @dg.run_status_sensor(
        name="serve_gold",
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[lakehouse_job],
        request_job=serving_job,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "After each successful lakehouse run, syncs the gold tables it wrote to the serving database: its window, "
            "and the older days it re-keyed. A failed run syncs nothing; the next successful one covers its days."
        ),
    )
    def serve_gold(context: dg.RunStatusSensorContext):
        run = context.dagster_run
        materialized: dict[str, set[str | None]] = {}
        for record in context.instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
            event = record.dagster_event
            layer, *name = event.asset_key.path
            if layer == catalog.GOLD and len(name) == 1 and name[0] in SERVED:
                materialized.setdefault(name[0], set()).add(event.partition)
        requests = serving_requests(run.run_id, run.tags, materialized)
        return requests or dg.SkipReason(f"run {run.run_id} wrote no served gold table")

    return serve_gold


def build_serving_defs(partitions_def: dg.PartitionsDefinition, lakehouse_job) -> dg.Definitions:
    """The serving assets, their job, the sensor that follows `lakehouse_job`, and the `sql` resource."""
    job = dg.define_asset_job(
        SERVING_JOB, selection=dg.AssetSelection.groups(GROUP), description="Syncs gold tables to the serving database for a day or a range of days.",
    )
    return dg.Definitions(
        assets=build_serving_assets(partitions_def),
        jobs=[job],
        sensors=[build_serving_sensor(lakehouse_job, job)],
        resources={"sql": SqlDatabase(url=dg.EnvVar(SQL_URL_VARIABLE))},
    )
