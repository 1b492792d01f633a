"""Gold served to a real PostgreSQL (seed 000 §1.4), and the `make sql` shell over the Delta tables.

One Postgres for the session and one lake for the module: ten days of the generated drops are run
as the pipeline runs them (lakehouse runs, each followed by the serving runs the `serve_gold`
sensor asks for), in an order that makes gold re-key days outside a run's window; then a sub-window
is re-run, and its serving run replayed. Every served table must then equal its gold Delta table.
"""

import datetime as dt
import io
import shutil
from decimal import Decimal

import dagster as dg
import duckdb
import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal
from sqlalchemy.dialects import mssql

from retail_lakehouse import catalog
from retail_lakehouse.orchestration import range_tags
from retail_lakehouse.serving import shell, sync
from retail_lakehouse.serving.assets import SERVED, SERVING_JOB, serving_key, serving_requests
from retail_lakehouse.settings import SQL_URL_VARIABLE, Settings
from retail_lakehouse.storage import LocalLakehouse
from retail_lakehouse_tests.conftest import START, make_lake
from retail_lakehouse_tests.postgres import Postgres

LAST = START + dt.timedelta(days=9)
FIRST_HALF = (START, START + dt.timedelta(days=4))
SECOND_HALF = (START + dt.timedelta(days=5), LAST)
SUB_WINDOW = (START + dt.timedelta(days=2), START + dt.timedelta(days=6))
# Trust authentication ignores it; it is there to be looked for where it must never appear.
PASSWORD = "pw-never-shown-4711"
# The upstream of the served gold tables: the seed 004 analytics are not needed here.
UPSTREAM = dg.AssetSelection.assets(*(["gold", n] for n in SERVED)).upstream().required_multi_asset_neighbors()


@pytest.fixture(scope="session")
def postgres():
    with Postgres() as pg:
        yield pg


@pytest.fixture(scope="module")
def sql_url(postgres):
    return postgres.url.replace(f"//{postgres.user}@", f"//{postgres.user}:{PASSWORD}@")


def _landing_with_a_late_product(generated_landing, out):
    """The generated drops, with one product sold on the first two days delivered on the seventh:
    its facts sit on the unknown member until a run of the second half re-keys them, on days no
    later run covers (the sub-window starts on the third day)."""
    shutil.copytree(generated_landing, out)
    drops = {p.name[len("product_"):len("product_") + 8]: p for p in sorted((out / "product").glob("product_*.csv"))}
    first_days = {(START + dt.timedelta(days=i)).strftime("%Y%m%d") for i in range(10)}
    lines = {day: drops[day].read_text().splitlines(keepends=True) for day in sorted(first_days) if day in drops}
    first_drop = START.strftime("%Y%m%d")
    ids_of = {day: {line.split(",", 1)[0] for line in rows[1:]} for day, rows in lines.items()}
    only_first = ids_of[first_drop] - set().union(*(ids for day, ids in ids_of.items() if day != first_drop))
    sales = pl.concat([
        pl.read_csv(p, infer_schema=False).select("product_id")
        for p in sorted((out / "sales_returns").glob("*.csv"))
        if p.name.split("_")[2] in {(START + dt.timedelta(days=i)).strftime("%Y%m%d") for i in range(2)}
    ])
    sold = sales.filter(pl.col("product_id").is_in(sorted(only_first))).group_by("product_id").len().sort("len", "product_id")
    product = sold.row(0)[0]
    moved = [line for line in lines[first_drop][1:] if line.split(",", 1)[0] == product]
    drops[first_drop].write_text("".join(line for line in lines[first_drop] if line not in moved))
    seventh = (START + dt.timedelta(days=6)).strftime("%Y%m%d")
    tail = lines[seventh][-1]
    drops[seventh].write_text("".join(lines[seventh]) + ("" if tail.endswith("\n") else "\n") + "".join(moved))
    return product


class Served:
    """A lake whose runs are each followed by the serving runs the sensor requests."""

    def __init__(self, lake, instance):
        self.lake, self.instance = lake, instance
        self.serving_job = lake.defs.resolve_job_def(SERVING_JOB)
        self.sensor = lake.defs.resolve_sensor_def("serve_gold")
        self.serving_results: list[dg.ExecuteInProcessResult] = []

    def run(self, first, last) -> list[dg.RunRequest]:
        result = self.lake.run(first, last, selection=UPSTREAM, instance=self.instance)
        assert result.success
        context = dg.build_run_status_sensor_context(
            sensor_name="serve_gold", dagster_event=result.get_run_success_event(),
            dagster_instance=self.instance, dagster_run=result.dagster_run,
        )
        requests = self.sensor(context)
        self.serve(requests)
        return requests

    def serve(self, requests: list[dg.RunRequest]) -> None:
        for request in requests:
            result = self.serving_job.execute_in_process(tags=request.tags, asset_selection=request.asset_selection, instance=self.instance)
            assert result.success
            self.serving_results.append(result)


@pytest.fixture(scope="module")
def served(generated_landing, tmp_path_factory, sql_url):
    root = tmp_path_factory.mktemp("served")
    product = _landing_with_a_late_product(generated_landing, root / "landing")
    with pytest.MonkeyPatch.context() as env, dg.DagsterInstance.ephemeral() as instance:
        # The settings only record that the URL is set; the `sql` resource reads it through EnvVar when a run starts.
        env.setenv(SQL_URL_VARIABLE, sql_url)
        lake = make_lake(root, root / "landing", sql_url_from_env=True)
        state = Served(lake, instance)
        state.late_product = product
        state.first_half = state.run(*FIRST_HALF)
        state.second_half = state.run(*SECOND_HALF)
        state.sub_window = state.run(*SUB_WINDOW)
        state.serve(state.sub_window)  # the same window served again
        state.engine = sa.create_engine(sql_url)
        yield state
        state.engine.dispose()


def _sql_frame(engine, entry: catalog.Table, schema: str | None = sync.SCHEMA) -> pl.DataFrame:
    """What the SQL table holds, typed by SQLAlchemy (NUMERIC as Decimal) and then by the catalog."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(sync.sql_table(entry, schema))).all()
    return pl.DataFrame([tuple(r) for r in rows], schema=entry.schema, orient="row")


def test_the_served_tables_equal_gold_row_for_row_after_reruns_and_late_members(served):
    for name in SERVED:
        entry = catalog.table("gold", name)
        gold = served.lake.read(f"gold/{name}").sort(entry.unique)
        in_sql = _sql_frame(served.engine, entry).sort(entry.unique)
        assert gold.height > 0, name
        try:
            # Money compares as Decimal(18, 2), timestamps to the microsecond, in UTC.
            assert_frame_equal(in_sql, gold, check_exact=True)
        except AssertionError as err:
            raise AssertionError(f"gold.{name} in Postgres is not gold/{name}: {err}") from None
    days = served.lake.read("gold/fact_sales")["order_date"].unique().sort().to_list()
    assert days == [START + dt.timedelta(days=i) for i in range(10)]


def test_reruns_of_a_window_never_duplicate_a_row(served):
    with served.engine.connect() as conn:
        for name in SERVED:
            entry = catalog.table("gold", name)
            key = ", ".join(f'"{c}"' for c in entry.unique)
            total, distinct = conn.execute(sa.text(f'SELECT COUNT(*), COUNT(DISTINCT ({key})) FROM gold."{name}"')).one()
            assert total == distinct == served.lake.read(f"gold/{name}").height, name


def test_facts_rekeyed_outside_a_run_are_served_by_a_run_of_their_own_days(served):
    in_window, *outside = served.second_half
    assert in_window.tags == range_tags(*SECOND_HALF) and set(in_window.asset_selection) == {serving_key(n) for n in SERVED}
    assert outside, "the late product's arrival re-keyed no fact outside the second half: the test lost its premise"
    assert {tuple(r.asset_selection) for r in outside} == {(serving_key("fact_sales"),)}
    assert all(FIRST_HALF[0] <= dt.date.fromisoformat(r.tags["dagster/asset_partition_range_start"]) for r in outside)
    with served.engine.connect() as conn:
        keys = conn.execute(
            sa.text("SELECT DISTINCT product_key FROM gold.fact_sales WHERE product_id = :p AND order_date < :d"),
            {"p": served.late_product, "d": SUB_WINDOW[0]},
        ).scalars().all()
    assert keys and -1 not in keys


def test_primary_keys_and_column_types_in_postgres_are_the_catalogs(served, postgres):
    rows = postgres.psql(
        "SELECT c.relname, a.attname FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY (k.conkey) "
        "WHERE k.contype = 'p' AND n.nspname = 'gold' ORDER BY c.relname, array_position(k.conkey, a.attnum)"
    ).splitlines()
    keys: dict[str, list[str]] = {}
    for row in rows:
        table, column = row.split("|")
        keys.setdefault(table, []).append(column)
    assert keys == {name: list(catalog.table("gold", name).unique) for name in SERVED}
    types = {
        (t, c): (kind, precision, scale)
        for t, c, kind, precision, scale in (
            r.split("|") for r in postgres.psql(
                "SELECT table_name, column_name, data_type, numeric_precision, numeric_scale FROM information_schema.columns WHERE table_schema = 'gold'"
            ).splitlines()
        )
    }
    assert types[("fact_sales", "sales_total")] == ("numeric", "18", "2")
    assert types[("fact_payment", "refund_amount")] == ("numeric", "18", "2")
    assert types[("fact_sales", "order_date")][0] == "date"
    assert types[("fact_sales", "load_timestamp")][0] == "timestamp with time zone"
    assert types[("fact_sales", "is_returned")][0] == "boolean"
    assert types[("fact_sales", "sales_id")][0] == "bigint"
    assert types[("dim_customer", "data_quality_score")][0] == "double precision"


def test_the_seed_9_queries_answer_the_same_in_postgres_and_in_the_shell(served):
    queries = shell.seed_queries()
    assert sorted(queries) == ["9_1_sales_performance", "9_2_customer_lifetime_value", "9_3_product_return_analysis"]
    duck = shell.connect(LocalLakehouse(root=str(served.lake.settings.lake_root)))
    for name, sql in queries.items():
        with served.engine.connect() as conn:
            result = conn.execute(sa.text(sql))
            pg_columns, pg_rows = list(result.keys()), [tuple(r) for r in result]
        relation = duck.sql(sql)
        duck_columns, duck_rows = relation.columns, relation.fetchall()
        assert pg_columns == duck_columns, name
        assert len(pg_rows) >= 10, name
        # Same rows in the same order, money and rates as the same Decimals.
        assert pg_rows == duck_rows, name
        money = pg_columns.index("total_revenue" if "total_revenue" in pg_columns else "lifetime_value")
        assert all(isinstance(r[money], Decimal) for r in duck_rows if r[money] is not None), name


def test_the_shell_runs_a_statement_given_with_c_over_the_lake_of_the_settings(served, monkeypatch, capsys):
    monkeypatch.setenv("RETAIL_LAKEHOUSE_LAKE_ROOT", str(served.lake.settings.lake_root))
    monkeypatch.delenv(SQL_URL_VARIABLE, raising=False)
    expected = served.lake.read("gold/fact_sales")
    assert shell.main(["-c", "SELECT COUNT(*) AS n, SUM(sales_total) AS revenue FROM fact_sales"]) == 0
    out = capsys.readouterr().out
    assert f" {expected.height} " in out and f" {expected['sales_total'].sum()} " in out
    assert shell.main(["-c", "SELECT * FROM gold.no_such_table"]) == 1


def test_the_shell_reads_statements_from_a_pipe_and_goes_on_after_an_error():
    out = io.StringIO()
    script = "-- a comment\nSELECT 1 AS a;\nSELECT\n  2 AS b;\nSELECT nope;\n.tables\n.quit\nSELECT 3 AS c;\n"
    assert shell.repl(duckdb.connect(), io.StringIO(script), out, interactive=False) == 1
    text = out.getvalue()
    assert "│   a   │" in text and "│   b   │" in text and 'Error: Binder Error: Referenced column "nope"' in text
    assert "│   c   │" not in text


def test_the_url_password_reaches_no_metadata_and_no_log(served):
    logs = [
        entry for result in served.serving_results for entry in served.instance.all_logs(result.run_id)
    ]
    assert logs
    text = "\n".join(
        [entry.user_message or "" for entry in logs]
        + [str(entry.dagster_event.event_specific_data) for entry in logs if entry.dagster_event is not None]
    )
    assert PASSWORD not in text
    assert ":***@" in text  # the target is logged, masked
    # The last window served: the replay of the sub-window, whose rows gold still holds.
    replay = served.serving_results[-len(served.sub_window)]
    materialized = replay.asset_materializations_for_node("serving__fact_sales")
    metadata = materialized[0].metadata
    assert metadata["dagster/table_name"].value == "lakehouse.gold.fact_sales"
    assert metadata["sql_table"].value == "gold.fact_sales"
    by_day = {m.partition: m.metadata["dagster/row_count"].value for m in materialized}
    facts = served.lake.read("gold/fact_sales").filter(pl.col("order_date").is_between(*SUB_WINDOW))
    assert by_day == {d.isoformat(): n for d, n in facts.group_by("order_date").len().iter_rows()}


def test_without_a_sql_url_nothing_is_served_and_with_one_the_serving_assets_mirror_gold(tmp_path):
    plain = make_lake(tmp_path / "plain", tmp_path / "landing").defs.resolve_asset_graph()
    assert not [k for k in plain.get_all_asset_keys() if k.path[0] == "serving"]
    graph = make_lake(tmp_path / "served", tmp_path / "landing", sql_url_from_env=True).defs.resolve_asset_graph()
    served = {k for k in graph.get_all_asset_keys() if k.path[0] == "serving"}
    assert served == {serving_key(n) for n in SERVED}
    for key in served:
        node, gold = graph.get(key), graph.get(dg.AssetKey(["gold", key.path[1]]))
        assert node.group_name == "serving" and node.parent_keys == {gold.key}
        assert node.partitions_def == gold.partitions_def
        assert node.backfill_policy == dg.BackfillPolicy.single_run()
    assert Settings.from_env({SQL_URL_VARIABLE: "postgresql+psycopg2://u:p@h/db"}).sql_url_from_env
    assert not Settings.from_env({}).sql_url_from_env


@pytest.mark.parametrize("value", [" ", "u:secret@h/db"], ids=["blank", "not-a-url"])
def test_a_bad_sql_url_is_refused_without_being_echoed(value):
    from retail_lakehouse.settings import SettingsError

    with pytest.raises(SettingsError, match=SQL_URL_VARIABLE) as err:
        Settings.from_env({SQL_URL_VARIABLE: value})
    assert "secret" not in str(err.value)


def test_serving_requests_cover_the_window_and_each_span_of_days_outside_it():
    tags = range_tags(dt.date(2026, 9, 10), dt.date(2026, 9, 12))
    materialized = {
        "fact_sales": {"2026-09-10", "2026-09-11", "2026-09-12", "2026-09-01", "2026-09-02", "2026-09-05"},
        "agg_daily_sales": {"2026-09-10", "2026-09-11", "2026-09-12"},
        "dim_customer": {None},
        "customer_360": {None},  # not served
    }
    window, *rest = serving_requests("r1", tags, materialized)
    assert window.tags == tags
    assert set(window.asset_selection) == {serving_key("fact_sales"), serving_key("agg_daily_sales"), serving_key("dim_customer")}
    assert [(r.asset_selection, r.tags) for r in rest] == [
        ([serving_key("fact_sales")], range_tags(dt.date(2026, 9, 1), dt.date(2026, 9, 2))),
        ([serving_key("fact_sales")], range_tags(dt.date(2026, 9, 5), dt.date(2026, 9, 5))),
    ]
    assert len({r.run_key for r in [window, *rest]}) == 3
    assert serving_requests("r2", tags, {"customer_360": {None}}) == []


@pytest.mark.filterwarnings("ignore:Dialect sqlite\\+pysqlite does \\*not\\* support Decimal objects natively")
def test_the_sync_replaces_windows_on_a_database_without_schemas(tmp_path):
    entry = catalog.table("gold", "agg_daily_sales")
    day = [dt.date(2026, 9, 1), dt.date(2026, 9, 1), dt.date(2026, 9, 2)]

    def frame(revenue: str) -> pl.DataFrame:
        return pl.DataFrame(
            {"sales_date": day, "sales_channel": ["Online", "Store", "Online"], "total_revenue": [Decimal(revenue)] * 3,
             "total_quantity": [1, 2, 3], "total_orders": [1, 1, 1], "total_lines": [1, 2, 3], "unique_customers": [1, 1, 1],
             "return_count": [0, 0, 1], "avg_order_value": [Decimal(revenue)] * 3},
            schema=entry.schema,
        )

    url = f"sqlite:///{tmp_path / 'serving.db'}"
    assert sync.replace_window(url, entry, frame("10.10"), day[0], day[2], schema=None) == 3
    # The second day alone, again: the first day's rows stay, the second day's are replaced, once.
    assert sync.replace_window(url, entry, frame("20.20").filter(pl.col("sales_date") == day[2]), day[2], day[2], schema=None) == 1
    engine = sa.create_engine(url)
    got = _sql_frame(engine, entry, schema=None).sort("sales_date", "sales_channel")
    assert got["total_revenue"].to_list() == [Decimal("10.10"), Decimal("10.10"), Decimal("20.20")]
    with pytest.raises(ValueError, match="outside 2026-09-02..2026-09-02"):
        sync.replace_window(url, entry, frame("1.00"), day[2], day[2], schema=None)
    assert sync.replace_whole(url, entry, frame("5.00").head(1), schema=None) == 1
    assert _sql_frame(engine, entry, schema=None).height == 1
    engine.dispose()


def test_the_sql_types_render_for_azure_sql_too():
    ddl = str(sa.schema.CreateTable(sync.sql_table(catalog.table("gold", "fact_payment"))).compile(dialect=mssql.dialect(deprecate_large_types=True)))
    assert "CREATE TABLE gold.fact_payment" in ddl
    assert "amount NUMERIC(18, 2) NOT NULL" in ddl
    assert "payment_id NVARCHAR(255) NOT NULL" in ddl and "card_brand NVARCHAR(max)" in ddl
    assert "load_timestamp DATETIMEOFFSET" in ddl and "is_refunded BIT" in ddl
    assert "IDENTITY" not in ddl and "CONSTRAINT pk_fact_payment PRIMARY KEY (payment_id)" in ddl
    assert sync.masked("mssql+pyodbc://admin:hunter2@server.database.windows.net:1433/salesdb?driver=ODBC+Driver+18+for+SQL+Server") == (
        "mssql+pyodbc://admin:***@server.database.windows.net:1433/salesdb?driver=ODBC+Driver+18+for+SQL+Server"
    )
