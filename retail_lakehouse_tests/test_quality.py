"""Quality gates: each check passes on consistent data and fails when its invariant is broken."""

import datetime as dt
import random
from decimal import Decimal

import dagster as dg
import pandera.polars as pa
import polars as pl
import pytest

from retail_lakehouse import catalog
from retail_lakehouse.gold import star
from retail_lakehouse.quality import checks
from retail_lakehouse.quality import policy as p
from retail_lakehouse.quality.contracts import SCHEMAS
from retail_lakehouse_tests.conftest import START, make_lake

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 9, 10, tzinfo=UTC)


def _sales(rows: list[tuple]) -> pl.DataFrame:
    """fact_sales-shaped rows from (order_id, line, date, channel, total, customer_key, product_key)."""
    base = []
    for sales_id, (order_id, line, day, channel, total, ckey, pkey) in enumerate(rows, start=1):
        base.append({
            "sales_id": sales_id, "order_id": order_id, "line_number": line, "customer_id": "C1", "customer_key": ckey,
            "product_id": "P1", "product_key": pkey, "store_id": "S1", "order_date": day, "delivery_date": day, "quantity": 1,
            "unit_price": Decimal(total), "discount_amount": Decimal("0"), "tax_amount": Decimal("0"), "sales_total": Decimal(total),
            "sales_channel": channel, "order_status": "Completed", "is_returned": False, "return_date": None, "return_reason": None,
            "return_quantity": None, "return_amount": None, "load_timestamp": NOW,
        })
    return pl.DataFrame(base, schema=star.FACT_SALES_SCHEMA)


D1, D2 = dt.date(2026, 9, 1), dt.date(2026, 9, 2)
FACTS = _sales([("O1", 1, D1, "Online", "10.01", 1, 1), ("O1", 2, D1, "Online", "0.99", 1, 1), ("O2", 1, D2, "Store", "5.00", 2, 2)])


def test_revenue_reconciliation_passes_when_totals_agree_and_fails_on_one_cent():
    agg = star.build_agg_daily_sales(FACTS)
    assert checks.revenue_reconciles_result(FACTS, agg).passed
    off = agg.with_columns(pl.when(pl.col("sales_date") == D1).then(pl.col("total_revenue") + Decimal("0.01")).otherwise(pl.col("total_revenue")).alias("total_revenue"))
    result = checks.revenue_reconciles_result(FACTS, off)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert result.metadata["mismatches"].value == 1
    missing = agg.filter(pl.col("sales_date") == D2)
    assert not checks.revenue_reconciles_result(FACTS, missing).passed


def test_orphans_are_counted_warn_above_the_first_share_and_block_above_the_second():
    clean = checks.orphans_result(FACTS)
    assert clean.passed and clean.metadata["orphan_facts"].value == 0
    rows = [(f"O{i}", 1, D1, "Online", "1.00", 1, 1) for i in range(100)]
    few = _sales(rows[:93] + [(f"X{i}", 1, D1, "Online", "1.00", -1, 1) for i in range(7)])
    warn = checks.orphans_result(few)
    assert not warn.passed and warn.severity == dg.AssetCheckSeverity.WARN
    many = _sales(rows[:80] + [(f"X{i}", 1, D1, "Online", "1.00", 1, -1) for i in range(20)])
    error = checks.orphans_result(many)
    assert not error.passed and error.severity == dg.AssetCheckSeverity.ERROR
    assert error.metadata["unknown_product"].value == 20 and error.failed_days == {D1}
    small = _sales(rows[:43] + [(f"X{i}", 1, D1, "Online", "1.00", 1, -1) for i in range(7)])
    assert checks.orphans_result(small).severity == dg.AssetCheckSeverity.WARN, "7 of 50 is not surely over 10%"
    # Judged per day: a bad day among good ones is named and withheld, the good day is not.
    good_day = [(f"G{i}", 1, D2, "Online", "1.00", 1, 1) for i in range(1000)]
    mixed = checks.orphans_result(_sales(good_day + rows[:80] + [(f"X{i}", 1, D1, "Online", "1.00", 1, -1) for i in range(20)]))
    assert mixed.blocks and mixed.failed_days == {D1} and mixed.metadata["orphan_share"].value < 0.1


def _payments(refunds: list[str | None]) -> pl.DataFrame:
    rows = [{
        "payment_id": f"PAY{i}", "order_id": f"O{i}", "payment_type": "Cash", "card_brand": None, "card_token": None, "card_last4": None,
        "amount": Decimal("10.00"), "payment_status": "Completed", "transaction_date": D1, "is_refunded": r is not None,
        "refund_amount": None if r is None else Decimal(r), "refund_reason": None, "refund_status": None, "refund_date": None, "load_timestamp": NOW,
    } for i, r in enumerate(refunds)]
    return pl.DataFrame(rows, schema=star.FACT_PAYMENT_SCHEMA)


def test_refunds_never_exceed_their_payment():
    assert checks.refunds_within_payments_result(_payments([None, "10.00", "3.50"])).passed
    broken = checks.refunds_within_payments_result(_payments([None, "10.01"]))
    assert not broken.passed and broken.metadata["refund_exceeds_payment"].value == 1


def _dim(versions: list[tuple]) -> pl.DataFrame:
    rows = []
    for key, cid, start, end in versions:
        rows.append({"customer_key": key, "customer_id": cid, "valid_from": start, "valid_to": end, "is_current": end is None})
    return pl.DataFrame(rows)


def test_scd2_intervals_must_not_overlap_and_exactly_one_version_is_current():
    t = lambda d: dt.datetime(2026, 9, d, tzinfo=UTC)  # noqa: E731
    good = _dim([(1, "C1", t(1), t(5)), (2, "C1", t(5), None), (3, "C2", t(2), None)])
    assert checks.scd2_intervals_result(("gold", "dim_customer"), good, "customer_id", "customer_key").passed
    overlap = _dim([(1, "C1", t(1), t(6)), (2, "C1", t(5), None)])
    assert checks.scd2_intervals_result(("gold", "dim_customer"), overlap, "customer_id", "customer_key").metadata["overlapping_versions"].value == 1
    two_current = _dim([(1, "C1", t(1), None), (2, "C1", t(5), None)])
    result = checks.scd2_intervals_result(("gold", "dim_customer"), two_current, "customer_id", "customer_key")
    assert not result.passed and result.metadata["keys_without_exactly_one_current"].value == 1
    duplicate_key = _dim([(1, "C1", t(1), None), (1, "C2", t(1), None)])
    assert not checks.scd2_intervals_result(("gold", "dim_customer"), duplicate_key, "customer_id", "customer_key").passed


def _conserved(silver: list[int], pending: list[int]) -> pl.DataFrame:
    frame = pl.DataFrame({"drop_date": [D1, D2], "bronze_rows": [5, 4], "silver_rows": silver, "quarantined_rows": [1, 0],
                          "superseded_rows": [1, 0], "pending_rows": pending})
    return frame.with_columns((pl.col("bronze_rows") == pl.sum_horizontal(pl.exclude("drop_date", "bronze_rows"))).alias("balanced"))


def test_conservation_fails_when_a_row_is_unaccounted_for():
    assert checks.conservation_result(("silver", "sales"), _conserved([3, 4], [0, 0])).passed
    lost = checks.conservation_result(("silver", "sales"), _conserved([3, 3], [0, 0]))
    assert lost.blocks and lost.failed_days == {D2}


def test_rows_pending_outside_the_run_warn_and_withhold_nothing():
    pending = checks.conservation_result(("silver", "sales"), _conserved([3, 3], [0, 1]))
    assert not pending.passed and pending.severity == dg.AssetCheckSeverity.WARN and not pending.failed_days
    assert "late window" in pending.result.description


def _quarantine(n: int) -> pl.DataFrame:
    return pl.DataFrame({"order_id": [f"O{i}" for i in range(n)], "reject_reasons": [["non_positive_quantity"]] * n,
                         "_source_file": ["f"] * n, "_row_number": list(range(1, n + 1)), "drop_date": [D1] * n},
                        schema={"order_id": pl.String, "reject_reasons": pl.List(pl.String), "_source_file": pl.String, "_row_number": pl.Int64, "drop_date": pl.Date})


def _balance(bronze_rows: int, quarantined: int, day: dt.date = D1) -> pl.DataFrame:
    return pl.DataFrame({"drop_date": [day], "bronze_rows": [bronze_rows], "quarantined_rows": [quarantined]})


def test_quarantine_share_surely_over_the_limit_fails_the_blocking_check_and_any_excess_is_reported():
    below, warn = checks.quarantine_results(("silver", "sales"), _balance(100, 5), _quarantine(5))
    assert below.passed and warn.passed and warn.metadata["quarantine_share"].value == 0.05
    # 6 of 100 may be a 3%-dirty feed's unlucky day: reported (WARN), not blocked.
    noise, warn = checks.quarantine_results(("silver", "sales"), _balance(100, 6), _quarantine(6))
    assert noise.passed and not warn.passed and warn.severity == dg.AssetCheckSeverity.WARN and not warn.failed_days
    above, _ = checks.quarantine_results(("silver", "sales"), _balance(1000, 80), _quarantine(80))
    assert not above.passed and above.severity == dg.AssetCheckSeverity.ERROR
    assert above.failed_days == {D1} and above.metadata["failed_days"].value == D1.isoformat()
    assert "non_positive_quantity" in above.metadata["rows_per_rule"].value
    assert checks.quarantine_results(("silver", "sales"), _balance(1000, 80), _quarantine(80), limit=0.10)[0].passed
    # A small day that is wholly bad is a broken feed, whatever its size.
    small, _ = checks.quarantine_results(("silver", "inventory"), _balance(15, 15), _quarantine(15))
    assert small.blocks and small.failed_days == {D1}
    one_of_fifteen, _ = checks.quarantine_results(("silver", "inventory"), _balance(15, 1), _quarantine(1))
    assert one_of_fifteen.passed


def test_the_gate_asks_whether_the_share_is_surely_over_the_limit():
    # Against an exact binomial referee: a 3% feed's days of 100 rows fail a plain 5% cut about
    # one day in twelve; the gate at 95% confidence fails far fewer than 5% of such days.
    from math import comb

    p_dirty, n = 0.03, 100
    frame = pl.DataFrame({"bad": list(range(n + 1)), "rows": [n] * (n + 1)})
    failing = frame.filter(checks.surely_above(pl.col("bad"), pl.col("rows"), 0.05))["bad"].to_list()
    chance = sum(comb(n, k) * p_dirty**k * (1 - p_dirty) ** (n - k) for k in failing)
    plain = sum(comb(n, k) * p_dirty**k * (1 - p_dirty) ** (n - k) for k in range(6, n + 1))
    assert plain > 0.07 and chance < 0.01
    # ... while a feed that is really 10% dirty is caught on most days of 1000 rows.
    assert frame.with_columns(rows=pl.lit(1000)).filter(pl.col("bad") == 100).select(
        checks.surely_above(pl.col("bad"), pl.col("rows"), 0.05)).item()


def test_one_bad_day_fails_the_quarantine_gate_whatever_the_size_of_the_window():
    days = [D1 + dt.timedelta(days=i) for i in range(31)]
    balance = pl.DataFrame({"drop_date": days, "bronze_rows": [1000] * 31, "quarantined_rows": [0] * 14 + [1000] + [0] * 16})
    gate, _ = checks.quarantine_results(("silver", "sales"), balance, _quarantine(1000))
    assert not gate.passed and gate.failed_days == {days[14]}
    assert gate.metadata["days_checked"].value == 31 and days[14].isoformat() in gate.result.description


def test_contract_names_the_broken_rule_and_shows_sample_rows():
    assert checks.contract_result(("gold", "fact_sales"), FACTS).passed
    bad = FACTS.with_columns(pl.lit("Fax").alias("sales_channel"))
    result = checks.contract_result(("gold", "fact_sales"), bad)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert "sales_channel" in result.metadata["failures_per_rule"].value and "isin" in result.metadata["failures_per_rule"].value
    assert "Fax" in result.metadata["sample_failing_rows"].value
    duplicated = pl.concat([FACTS, FACTS.head(1)])
    assert "sales_id" in checks.contract_result(("gold", "fact_sales"), duplicated).metadata["failures_per_rule"].value


@pytest.mark.parametrize(("hours", "passed", "severity"), [(23, True, None), (29, False, "WARN"), (31, False, "ERROR")])
def test_partition_freshness_goes_stale_after_24_h_and_fails_after_30_h(hours, passed, severity):
    newest = dt.date(2026, 9, 9)  # complete at 2026-09-10 00:00 UTC
    now = dt.datetime(2026, 9, 10, tzinfo=UTC) + dt.timedelta(hours=hours)
    result = checks.partition_freshness_result(("gold", "fact_sales"), newest, now)
    assert result.passed is passed
    if severity:
        assert result.severity == getattr(dg.AssetCheckSeverity, severity)


def test_freshness_check_reads_the_newest_partition_with_an_injected_clock(generated_landing, tmp_path):
    from retail_lakehouse.quality.freshness import build_freshness_checks

    lake = make_lake(tmp_path, generated_landing)
    last = START + dt.timedelta(days=2)
    assert lake.run(START, last).success
    clock = {"now": dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), UTC) + dt.timedelta(hours=29)}
    fresh = build_freshness_checks({k: catalog.table(k).partition for k in p.FRESHNESS_CHECKED}, now=lambda: clock["now"])
    assets = [a for a in lake.defs.assets if isinstance(a, dg.AssetsDefinition)]

    def evaluate():
        result = dg.materialize([*assets, *fresh], resources=lake.defs.resources, selection=dg.AssetSelection.checks(*[k for c in fresh for k in c.check_keys]))
        return {e.asset_key.path[1]: e for e in result.get_asset_check_evaluations()}

    before = evaluate()
    assert before["fact_sales"].metadata["newest_partition"].value == str(last)
    assert not before["fact_sales"].passed and before["fact_sales"].severity == dg.AssetCheckSeverity.WARN
    clock["now"] += dt.timedelta(hours=2)
    after = evaluate()
    assert not after["fact_sales"].passed and after["fact_sales"].severity == dg.AssetCheckSeverity.ERROR
    clock["now"] -= dt.timedelta(hours=8)
    assert evaluate()["agg_daily_sales"].passed


def test_a_corrupted_partition_is_stopped_before_gold_and_the_other_days_load(tmp_path):
    from retail_lakehouse.generator import generate

    landing_copy = tmp_path / "landing"
    generate(landing_copy, START, 6, seed=3, scale=0.1)  # a few hundred sales lines a day
    bad_day = START + dt.timedelta(days=3)
    [path] = sorted((landing_copy / "sales_returns").glob(f"sales_returns_{bad_day:%Y%m%d}_230000.csv"))
    drop = pl.read_csv(path, infer_schema=False)
    corrupted = drop.with_columns(
        pl.when(pl.int_range(pl.len()) % 2 == 0).then(pl.lit("-1")).otherwise(pl.col("quantity")).alias("quantity")
    )
    corrupted.write_csv(path)
    lake = make_lake(tmp_path, landing_copy)
    assert lake.run(START, bad_day - dt.timedelta(days=1)).success
    result = lake.run(bad_day, raise_on_error=False)
    assert not result.success
    evaluations = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    failed = evaluations[("silver/sales", p.QUARANTINE_WITHIN_LIMIT)]
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    assert "non_positive_quantity" in failed.metadata["rows_per_rule"].value
    assert "-1" in failed.metadata["sample_quarantined_rows"].value
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "silver/sales" in materialized and "gold/fact_sales" not in materialized and "gold/agg_daily_sales" not in materialized
    # The following day runs on and reaches gold; the corrupted day never does.
    assert lake.run(bad_day + dt.timedelta(days=1)).success
    fact_days = set(lake.read("gold/fact_sales")["order_date"].unique())
    assert bad_day not in fact_days and {bad_day - dt.timedelta(days=1), bad_day + dt.timedelta(days=1)} <= fact_days


def _inventory(n: int, seed: int) -> pl.DataFrame:
    """silver/inventory-shaped rows whose keys repeat (nulls too) and some of which break other rules."""
    rnd = random.Random(seed)
    return pl.DataFrame(
        {
            "snapshot_date": [rnd.choice([D1, D2, None]) for _ in range(n)],
            "store_id": [rnd.choice(["S1", "S2", None]) for _ in range(n)],
            "product_id": [rnd.choice([f"P{i}" for i in range(40)]) for _ in range(n)],
            "quantity_on_hand": [rnd.choice([5, 0, -1]) for _ in range(n)],
            "reorder_point": [3] * n,
            "_source_file": ["inventory_20260901.csv"] * n,
            "_row_number": list(range(n)),
            "drop_date": [D1] * n,
        },
        schema=catalog.schema("silver", "inventory"),
    )


@pytest.mark.parametrize("seed", range(5))
def test_the_contract_finds_the_key_failures_pandera_finds_and_the_same_failing_rows(seed):
    """The key rule is tested by a hash sort, not by pandera; pandera's whole contract (its own key
    rule included) is the referee, failure for failure."""
    for path, frame in ((("silver", "inventory"), _inventory(400, seed)), (("gold", "fact_sales"), pl.concat([FACTS, FACTS.head(2)]))):
        keys = list(catalog.table(*path).unique)
        expected = frame.with_row_index("index").filter(pl.struct(keys).is_duplicated())["index"].cast(pl.Int64)
        assert expected.len() > 0
        assert checks.duplicated_rows(frame, keys).sort().to_list() == expected.to_list()
        with pytest.raises(pa.errors.SchemaErrors) as err:
            SCHEMAS[path].validate(frame, lazy=True)
        referee = err.value.failure_cases.group_by(pl.col("column").cast(pl.String), pl.col("check").cast(pl.String)).agg(
            pl.len().alias("failures")
        )
        result = checks.contract_result(path, frame)
        assert not result.passed and result.metadata["failures"].value == err.value.failure_cases.height
        table = result.metadata["failures_per_rule"].value
        for column, check, n in referee.iter_rows():
            assert f"| {column or ''} | {check} | {n} |" in table
    assert checks.duplicated_rows(FACTS, ["sales_id"]).is_empty()
