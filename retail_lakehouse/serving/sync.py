"""Gold tables into a SQL database (seed 000 §1.4 "Sync Method: Databricks → Azure SQL").

A SQL table is created from the table's catalog entry (column types, nullability, primary key),
then each sync replaces exactly what it was given, in ONE transaction: the rows of a window of days
of a partitioned table (DELETE WHERE <partition column> BETWEEN first AND last, then INSERT), or
every row of an unpartitioned one. A re-run of a window therefore never duplicates, and a reader
sees the window's old rows or its new ones, never a mix: DELETE rather than TRUNCATE or DROP, since
those take locks that block readers (Postgres) or are not transactional everywhere.

Tables live in the schema `gold` (`gold.fact_sales`), not as `gold_fact_sales`: Postgres and Azure
SQL both have schemas, access can be granted per schema, and the seed 000 §9 queries then read the
same in the database and in `make sql` (whose DuckDB views are `gold.<table>` too). `schema=None`
puts tables in the connection's default schema, for databases without schemas (SQLite).

Rows go in with plain `executemany` in batches, so any SQLAlchemy dialect works; on Postgres with
psycopg2 by `COPY ... FROM STDIN` instead, in the same transaction (about ten times faster, and a
daily run's 31-day window of facts at scale 1 is ~90,000 rows). Money is `NUMERIC(p, s)`, filled
from `Decimal` or from its exact decimal text, never from float. There are no foreign keys:
dimensions are replaced whole in their own transaction, which a key from the facts would forbid.

URLs (the password only ever in the environment, `RETAIL_LAKEHOUSE_SQL_URL`):
- Postgres: `postgresql+psycopg2://user:password@host:5432/retail` (psycopg2: SQLAlchemy 2.1 picks
  psycopg 3 for a bare `postgresql://`, which is not installed).
- Azure SQL: `mssql+pyodbc://user:password@server.database.windows.net:1433/salesdb?driver=ODBC+Driver+18+for+SQL+Server`
  (needs `pyodbc` and Microsoft's ODBC driver 18; not installed or tested here). The types below
  render there as NUMERIC(18, 2), DATE, DATETIMEOFFSET, NVARCHAR, BIT, BIGINT.

Pure SQLAlchemy and Polars, no Dagster: `retail_lakehouse.serving.assets` wires it to the lake.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from contextlib import contextmanager

import polars as pl
import sqlalchemy as sa

from retail_lakehouse.catalog import Table

SCHEMA = "gold"
# Rows per executemany call (or COPY): bounds what is held at once (a year of facts is a million rows).
INSERT_BATCH_ROWS = 10_000
COPY_BATCH_ROWS = 100_000
# Key columns cannot be unbounded text on SQL Server (no index on NVARCHAR(max)); ids are short.
KEY_TEXT_LENGTH = 255


class SchemaMismatch(RuntimeError):
    """The SQL table exists with other columns than the catalog declares."""


def parse_url(url: str | sa.URL) -> sa.URL:
    """A SQLAlchemy URL; a malformed one fails without echoing it (it may hold a password)."""
    if isinstance(url, sa.URL):
        return url
    try:
        return sa.make_url(url)
    except sa.exc.ArgumentError:
        raise ValueError("not a SQLAlchemy URL (like postgresql+psycopg2://user:password@host:5432/db); the value is not shown") from None


def masked(url: str | sa.URL) -> str:
    """The URL with its password replaced by ***, for logs."""
    return parse_url(url).render_as_string(hide_password=True)


def create_engine(url: str | sa.URL) -> sa.Engine:
    # hide_parameters: a failed INSERT's error would otherwise quote rows (emails, card tokens) into the log.
    return sa.create_engine(parse_url(url), pool_pre_ping=True, hide_parameters=True)


def sql_type(dtype: pl.DataType | type[pl.DataType], key: bool = False) -> sa.types.TypeEngine:
    """The SQL type of a catalog column type; `key`: the column is part of the primary key."""
    if isinstance(dtype, pl.Decimal):
        return sa.Numeric(dtype.precision, dtype.scale, asdecimal=True)
    if dtype == pl.Datetime:
        # SPEC §3: timestamps are UTC; TIMESTAMPTZ on Postgres, DATETIMEOFFSET on SQL Server.
        return sa.DateTime(timezone=getattr(dtype, "time_zone", None) is not None)
    simple = {
        pl.Date: sa.Date,
        pl.Boolean: sa.Boolean,
        pl.Int64: sa.BigInteger,
        pl.Int32: sa.Integer,
        pl.Int16: sa.SmallInteger,
        pl.Float64: sa.Double,
        pl.Float32: sa.Float,
    }
    for polars_type, sql in simple.items():
        if dtype == polars_type:
            return sql()
    if dtype == pl.String:
        # Unicode: NVARCHAR on SQL Server (names are not ASCII); VARCHAR / TEXT on Postgres.
        return sa.Unicode(KEY_TEXT_LENGTH) if key else sa.UnicodeText()
    raise TypeError(f"no SQL type for the Polars type {dtype}")


def sql_table(entry: Table, schema: str | None = SCHEMA, metadata: sa.MetaData | None = None) -> sa.Table:
    """The SQL table of a catalog entry: its columns and types, NOT NULL for required and key
    columns, its key as the primary key, and an index on its partition column (the sync deletes by it)."""
    if not entry.unique:
        raise ValueError(f"{entry.path} has no key in the catalog: a served table needs a primary key")
    columns = [
        sa.Column(
            c.name, sql_type(c.dtype, key=c.name in entry.unique), nullable=not (c.required or c.name in entry.unique),
            # Keys come from the lake (surrogate keys are hashes): never IDENTITY or SERIAL.
            autoincrement=False,
        )
        for c in entry.columns
    ]
    extras: list[sa.SchemaItem] = [sa.PrimaryKeyConstraint(*entry.unique, name=f"pk_{entry.name}")]
    if entry.partition:
        extras.append(sa.Index(f"ix_{entry.name}_{entry.partition}", entry.partition))
    return sa.Table(entry.name, metadata or sa.MetaData(), *columns, *extras, schema=schema)


def qualified_name(entry: Table, schema: str | None = SCHEMA) -> str:
    return f"{schema}.{entry.name}" if schema else entry.name


def ensure_table(conn: sa.Connection, table: sa.Table) -> None:
    """Create the schema and the table if missing; refuse a table whose columns are not the catalog's."""
    inspector = sa.inspect(conn)
    if table.schema and not inspector.has_schema(table.schema):
        conn.execute(sa.schema.CreateSchema(table.schema))
    if not inspector.has_table(table.name, schema=table.schema):
        table.create(conn)
        return
    existing = {c["name"] for c in inspector.get_columns(table.name, schema=table.schema)}
    declared = set(table.columns.keys())
    if existing != declared:
        name = f"{table.schema}.{table.name}" if table.schema else table.name
        raise SchemaMismatch(
            f"{name} has other columns than the catalog declares (missing: {sorted(declared - existing)}, "
            f"extra: {sorted(existing - declared)}): migrate the table or drop it, and the next sync creates it anew"
        )


def replace_window(
    bind: sa.Engine | str | sa.URL, entry: Table, frame: pl.DataFrame, first: dt.date, last: dt.date, schema: str | None = SCHEMA
) -> int:
    """Replace the rows of the days first..last (inclusive) of a partitioned table with `frame`,
    in one transaction; returns the rows written. Rows of `frame` outside the window are refused
    before anything is touched, so a bug upstream can never delete a neighbouring day."""
    column = entry.partition
    if column is None:
        raise ValueError(f"{entry.path} is not partitioned: use replace_whole")
    if not all(isinstance(d, dt.date) and not isinstance(d, dt.datetime) for d in (first, last)) or last < first:
        raise ValueError(f"a window is two dates, first <= last; got {first!r}, {last!r}")
    outside = frame.filter(~pl.col(column).is_between(first, last) | pl.col(column).is_null())
    if outside.height:
        raise ValueError(f"{outside.height} rows of {entry.path} have {column} outside {first}..{last}; nothing was synced")
    table = sql_table(entry, schema)
    return _replace(bind, table, frame, table.delete().where(table.c[column].between(first, last)))


def replace_whole(bind: sa.Engine | str | sa.URL, entry: Table, frame: pl.DataFrame, schema: str | None = SCHEMA) -> int:
    """Replace every row of the table with `frame`, in one transaction; returns the rows written."""
    table = sql_table(entry, schema)
    return _replace(bind, table, frame, table.delete())


def _replace(bind: sa.Engine | str | sa.URL, table: sa.Table, frame: pl.DataFrame, delete: sa.Delete) -> int:
    rows = frame.select(table.columns.keys())
    with _engine(bind) as engine, engine.begin() as conn:
        ensure_table(conn, table)
        conn.execute(delete)
        if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg2":
            _copy(conn, table, rows)
        else:
            for chunk in rows.iter_slices(INSERT_BATCH_ROWS):
                conn.execute(table.insert(), chunk.to_dicts())
    return rows.height


def _copy(conn: sa.Connection, table: sa.Table, rows: pl.DataFrame) -> None:
    """COPY the rows in as CSV. Every text value is quoted, so an unquoted \\N is the only null
    (a quoted "" stays an empty string); decimals are written as their exact text; timestamps with
    their UTC offset."""
    quote = conn.dialect.identifier_preparer
    columns = ", ".join(quote.quote(c) for c in table.columns.keys())
    statement = f"COPY {quote.format_table(table)} ({columns}) FROM STDIN WITH (FORMAT csv, NULL '\\N')"
    cursor = conn.connection.cursor()
    try:
        for chunk in rows.iter_slices(COPY_BATCH_ROWS):
            text = chunk.write_csv(
                None, include_header=False, null_value="\\N", quote_style="non_numeric", datetime_format="%Y-%m-%dT%H:%M:%S%.6f%:z"
            )
            cursor.copy_expert(statement, io.StringIO(text))
    finally:
        cursor.close()


@contextmanager
def _engine(bind: sa.Engine | str | sa.URL) -> Iterator[sa.Engine]:
    if isinstance(bind, sa.Engine):
        yield bind
        return
    engine = create_engine(bind)
    try:
        yield engine
    finally:
        engine.dispose()
