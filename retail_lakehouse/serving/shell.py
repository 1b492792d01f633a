"""`make sql`: an SQL shell over the gold Delta tables for analysts (DuckDB, in this process).

Every gold table that exists is a view `gold.<table>` (the search path also finds it as `<table>`)
over an Arrow dataset of the Delta version current when the shell starts (start it again to see
later runs): DuckDB scans it lazily, reading only the files and columns a query needs. Not DuckDB's `delta_scan`: that needs an extension downloaded at run
time. Not the `duckdb` CLI either: a separate process cannot see datasets registered here.

    python -m retail_lakehouse.serving.shell                 # interactive; statements end with ;
    python -m retail_lakehouse.serving.shell -c "SELECT ..."  # one statement, then exit
    python -m retail_lakehouse.serving.shell -f retail_lakehouse/serving/queries/9_1_sales_performance.sql

The lake is the one the pipeline writes (`RETAIL_LAKEHOUSE_LAKE_ROOT`, or ADLS Gen2 with
`RETAIL_LAKEHOUSE_ENV=azure`), reached through the same `lake` resource. The seed 000 §9 queries are
in `queries/`, and run unchanged in the serving database too.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from importlib import resources
from pathlib import Path
from typing import TextIO

import dagster as dg
import duckdb
from deltalake import DeltaTable

from retail_lakehouse import catalog
from retail_lakehouse.storage import Lakehouse

PROMPT, CONTINUE = "gold> ", "  ... "
_QUIT = {".quit", ".exit", "\\q", "quit", "exit"}
_TABLES = {".tables", "\\d"}
# Wide enough for the §9 reports; longer results end with DuckDB's "..." row.
MAX_ROWS, MAX_WIDTH = 10_000, 200


def seed_queries() -> dict[str, str]:
    """The seed 000 §9 queries by file name (`9_1_sales_performance`, ...), as the README shows them."""
    folder = resources.files(__package__).joinpath("queries")
    return {f.name.removesuffix(".sql"): f.read_text() for f in sorted(folder.iterdir(), key=lambda f: f.name) if f.name.endswith(".sql")}


def connect(lake: Lakehouse) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with a view `gold.<table>` over every gold table `lake` holds."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA gold")
    # SPEC §3: timestamps are UTC; shown as such, whatever the analyst's machine is set to.
    con.execute("SET TimeZone = 'UTC'")
    for entry in catalog.tables(catalog.GOLD):
        key = dg.AssetKey(list(entry.key))
        if not lake.exists(key):
            continue
        with lake.storage_errors(key, "reading"):
            dataset = DeltaTable(lake.table_uri(key), storage_options=lake.storage_options(key) or None).to_pyarrow_dataset()
        # A registered dataset is a connection-local view in `main`; the named view puts it in `gold`.
        con.register(f"_delta_gold_{entry.name}", dataset)
        con.execute(f'CREATE VIEW gold."{entry.name}" AS SELECT * FROM "_delta_gold_{entry.name}"')
    con.execute("SET search_path = 'gold,main'")
    return con


def gold_views(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [name for (name,) in con.execute("SELECT view_name FROM duckdb_views() WHERE schema_name = 'gold' ORDER BY view_name").fetchall()]


def run(con: duckdb.DuckDBPyConnection, sql: str, out: TextIO) -> None:
    """Execute `sql` (one or more statements) and print the last result as a table."""
    relation = con.sql(sql)
    if relation is None:
        return
    # `show` prints to sys.stdout (and `str()` stops at 20 rows): capture it for `out`.
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        relation.show(max_rows=MAX_ROWS, max_width=MAX_WIDTH)
    out.write(buffer.getvalue())


def repl(con: duckdb.DuckDBPyConnection, stdin: TextIO, out: TextIO, interactive: bool) -> int:
    """Read statements until end of input or `.quit`: a statement ends with a line ending in `;`,
    `.tables` and `.quit` are lines of their own. An error is printed and the shell goes on; read
    from a pipe, the exit status is then 1."""
    if interactive:
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401  (line editing and history for input())
        out.write(f"gold tables: {', '.join(gold_views(con)) or 'none yet (materialize gold first)'}\n")
        out.write("Statements end with ;  .tables lists the views, .quit (or Ctrl-D) leaves.\n")
    pending: list[str] = []
    failed = 0
    while True:
        try:
            line = _read_line(stdin, CONTINUE if pending else PROMPT, interactive)
        except KeyboardInterrupt:
            # Ctrl-C drops the statement being typed, not the shell.
            out.write("\n")
            pending = []
            continue
        if line is None:
            break
        stripped = line.strip()
        if not pending:
            if stripped in _QUIT:
                break
            if stripped in _TABLES:
                out.write("\n".join(gold_views(con)) + "\n")
                continue
            if not stripped or stripped.startswith("--"):
                continue
        pending.append(line.rstrip("\n"))
        if stripped.endswith(";"):
            failed += not _run_printing_errors(con, "\n".join(pending), out)
            pending = []
    if pending:
        failed += not _run_printing_errors(con, "\n".join(pending), out)
    return 1 if failed and not interactive else 0


def _read_line(stdin: TextIO, prompt: str, interactive: bool) -> str | None:
    """The next line, None at the end of input."""
    if interactive:
        try:
            return input(prompt)
        except EOFError:
            return None
    return stdin.readline() or None


def _run_printing_errors(con: duckdb.DuckDBPyConnection, sql: str, out: TextIO) -> bool:
    try:
        run(con, sql, out)
    except duckdb.Error as err:
        out.write(f"Error: {err}\n")
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m retail_lakehouse.serving.shell", description=__doc__.splitlines()[0])
    what = parser.add_mutually_exclusive_group()
    what.add_argument("-c", "--command", help="run this SQL and exit")
    what.add_argument("-f", "--file", help="run the SQL in this file and exit")
    args = parser.parse_args(argv)

    from retail_lakehouse.definitions import build_resources
    from retail_lakehouse.settings import Settings

    # Built as a run would build it (EnvVar credentials resolved), outside any run: no lake lock is
    # taken, since the shell only reads, and Delta readers see a consistent version.
    with dg.build_resources({"lake": build_resources(Settings.from_env())["lake"]}) as built:
        con = connect(built.lake)
    if args.command is not None or args.file is not None:
        sql = args.command if args.command is not None else Path(args.file).read_text()
        try:
            run(con, sql, sys.stdout)
        except duckdb.Error as err:
            sys.stderr.write(f"Error: {err}\n")
            return 1
        return 0
    return repl(con, sys.stdin, sys.stdout, interactive=sys.stdin.isatty())


if __name__ == "__main__":
    sys.exit(main())
