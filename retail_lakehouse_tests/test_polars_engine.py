"""The Polars engine in parts against one pass: a window worked a few days or a hash group at a time
builds the same lakehouse, row for row, as the whole window at once."""

import datetime as dt

import dagster as dg
import polars as pl

from retail_lakehouse import definitions
from retail_lakehouse.engine import PolarsEngine, Source
from retail_lakehouse.silver import rules
from retail_lakehouse_tests.compare import assert_same_lakehouse, run_as_users_do
from retail_lakehouse_tests.conftest import START, make_lake

ONE_PASS = PolarsEngine(chunk_days=10_000, rows_per_group=10**12)
# Parts far smaller than the defaults, so that the 40 days of test drops are split many times.
IN_PARTS = PolarsEngine(chunk_days=4, rows_per_group=300)


def _lake(monkeypatch, root, landing, engine: PolarsEngine):
    # The definitions as users get them, but for the engine's part sizes.
    with monkeypatch.context() as m:
        m.setattr(definitions, "build_engine", lambda *args, **kwargs: engine)
        return make_lake(root, landing)


def test_a_lakehouse_built_in_parts_equals_the_one_built_in_one_pass(generated_landing, tmp_path, monkeypatch):
    whole = _lake(monkeypatch, tmp_path / "whole", generated_landing, ONE_PASS)
    parts = _lake(monkeypatch, tmp_path / "parts", generated_landing, IN_PARTS)
    assert parts.defs.resources["engine"] is IN_PARTS
    outcomes = [run_as_users_do(lake, 40) for lake in (whole, parts)]
    assert outcomes[0] == outcomes[1] and outcomes[0][-1]
    rows = assert_same_lakehouse(whole.settings.lake_root, parts.settings.lake_root)
    assert rows[("silver", "sales")] > 5 * IN_PARTS.rows_per_group and rows[("silver", "sales_quarantine")] > 0


def test_every_version_of_a_key_meets_in_one_part_and_no_part_is_larger_than_asked(generated_landing, tmp_path):
    lake = make_lake(tmp_path, generated_landing)
    last = START + dt.timedelta(days=39)
    assert lake.run(START, last, selection=dg.AssetSelection.assets(["bronze", "sales_returns"])).success
    store = lake.defs.resources["lake"]
    source = Source(dg.AssetKey(["bronze", "sales_returns"]), "drop_date", START, last + dt.timedelta(days=1))
    seen: list[pl.DataFrame] = []

    def rule(frame: pl.DataFrame) -> dict[str, pl.DataFrame]:
        seen.append(frame)
        return {"clean": rules.clean_sales(frame, 30, START).clean}

    engine = PolarsEngine(rows_per_group=300)
    got = engine.map_groups(lake=store, source=source, by=("order_id",), rule=rule)["clean"]
    parts = [f for f in seen if f.height]
    total = source.scan(store).select(pl.len()).collect().item()
    assert len(parts) == -(-total // 300) > 3
    assert sum(p.height for p in parts) == total
    # A key (trimmed, as the rules compare it) lives in one part only, and parts are about the size asked (a hash splits evenly, not exactly).
    owners = pl.concat([p.select(pl.col("order_id").str.strip_chars(), part=pl.lit(i)) for i, p in enumerate(parts)])
    assert owners.group_by("order_id").agg(pl.col("part").n_unique()).get_column("part").max() == 1
    assert max(p.height for p in parts) < 2 * 300
    want = rules.clean_sales(source.scan(store).collect(), 30, START).clean
    key = ["order_id", "line_number"]
    assert got.sort(key).equals(want.sort(key))
