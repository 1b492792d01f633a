"""The seed analytics: market basket, demand forecast, price elasticity and churn risk.

Each rule is pinned on a small input worked by hand (or against a brute-force referee), and on
generated data the analytics must recover what the generator planted (`GenerationSummary.signals`).
"""

import datetime as dt
import random
from collections import Counter
from collections.abc import Iterable
from decimal import Decimal
from itertools import combinations

import numpy as np
import polars as pl
import pytest

from retail_lakehouse.generator import generate
from retail_lakehouse.gold import basket, churn, forecast, pricing
from retail_lakehouse_tests.conftest import make_lake

D0 = dt.date(2026, 1, 1)


def _baskets(orders: dict[str, Iterable[str]]) -> pl.DataFrame:
    rows = [("product", order, item) for order, items in orders.items() for item in items]
    return pl.DataFrame(rows, schema=["level", "basket", "item"], orient="row")


def test_itemset_supports_and_rule_lift_match_the_hand_count():
    # Four multi-item baskets (o5 holds one item, so it does not count).
    b = _baskets({"o1": "ABC", "o2": "AB", "o3": "AC", "o4": "BD", "o5": "A"})
    itemsets = basket.frequent_itemsets(b, min_support=0.5)
    got = {tuple(r["items"]): (r["basket_count"], r["support"]) for r in itemsets.iter_rows(named=True)}
    assert got == {("A",): (3, 0.75), ("B",): (3, 0.75), ("C",): (2, 0.5), ("A", "B"): (2, 0.5), ("A", "C"): (2, 0.5)}
    assert set(itemsets["baskets"]) == {4}

    rules = basket.association_rules(itemsets, min_confidence=0.6)
    got = {(tuple(r["antecedent"]), tuple(r["consequent"])): (r["confidence"], r["lift"]) for r in rules.iter_rows(named=True)}
    # C → A: both in 2 of 4, C in 2 → confidence 1, lift 1 / 0.75; A → B: 2/3, lift (2/3) / 0.75.
    expected = {
        (("C",), ("A",)): (1.0, 4 / 3), (("A",), ("C",)): (2 / 3, 4 / 3),
        (("A",), ("B",)): (2 / 3, 8 / 9), (("B",), ("A",)): (2 / 3, 8 / 9),
    }
    assert got.keys() == expected.keys()
    for rule, values in expected.items():
        assert got[rule] == pytest.approx(values), rule
    assert rules["lift"].to_list() == sorted(rules["lift"].to_list(), reverse=True)

    # At 25% every pair and the triple appear; rules split the triple both ways.
    low = basket.frequent_itemsets(b, min_support=0.25)
    assert {tuple(i) for i in low.filter(pl.col("size") == 3)["items"]} == {("A", "B", "C")}
    triple_rules = basket.association_rules(low, 0.0).filter(pl.col("basket_count") == 1, (pl.col("antecedent").list.len() + pl.col("consequent").list.len()) == 3)
    assert triple_rules.height == 6


# Up to 64 frequent items are counted over one bit mask per basket, more by joining baskets with
# candidates: 10 items take the first way, 90 the second.
@pytest.mark.parametrize("n_items, min_support", [(10, 0.03), (90, 0.004)])
def test_itemsets_equal_a_brute_force_count_on_random_baskets(n_items, min_support):
    rng = random.Random(5)
    items = [f"I{k:02d}" for k in range(n_items)]
    orders = {f"o{i}": rng.sample(items, rng.randint(1, 5)) for i in range(400)}
    multi = [set(v) for v in orders.values() if len(v) >= 2]
    counts = Counter(c for s in multi for k in (1, 2, 3) for c in combinations(sorted(s), k))
    expected = {c: n for c, n in counts.items() if n >= min_support * len(multi)}
    got = basket.frequent_itemsets(_baskets(orders), min_support)
    assert {tuple(r["items"]): r["basket_count"] for r in got.iter_rows(named=True)} == expected
    assert len(expected) > 50 and any(len(c) == 3 for c in expected)
    assert (sum(len(c) == 1 for c in expected) > 64) == (n_items > 64)


def test_baskets_leave_out_cancelled_orders_and_map_categories():
    facts = pl.DataFrame({
        "order_id": ["o1", "o1", "o1", "o2", "o2"],
        "product_id": ["P1", "P2", "P2", "P1", "P3"],
        "order_status": ["Completed"] * 3 + ["Cancelled"] * 2,
    })
    products = pl.DataFrame({"product_id": ["P1", "P2", "P3", "P2"], "is_current": [True, True, True, False], "category": ["X", "Y", "X", "Z"]})
    got = basket.baskets(facts, products).sort("level", "item")
    assert got.rows() == [("category", "o1", "X"), ("category", "o1", "Y"), ("product", "o1", "P1"), ("product", "o1", "P2")]


def _daily_facts(units: dict[tuple[str, str], np.ndarray], start: dt.date = D0) -> pl.DataFrame:
    """One line per (store, product, day) carrying that day's units."""
    frames = []
    for (store, product), y in units.items():
        days = pl.date_range(start, start + dt.timedelta(days=len(y) - 1), eager=True)
        frames.append(pl.DataFrame({"store_id": store, "product_id": product, "order_date": days, "quantity": y.astype(np.int64)}))
    return pl.concat(frames).filter(pl.col("quantity") > 0).with_columns(pl.lit("Completed").alias("order_status"))


PRODUCTS = pl.DataFrame({"product_id": ["P1", "P2", "P3"], "is_current": [True] * 3, "category": ["A", "A", "B"]})


def test_forecast_repeats_a_noiseless_weekly_pattern():
    week = np.array([10, 12, 11, 13, 20, 26, 18])  # D0 is a Thursday: the pattern is per weekday
    y = np.tile(week, 12)
    result = forecast.build_demand_forecast(_daily_facts({("S1", "P1"): y, ("S2", "P3"): 2 * y}), PRODUCTS)
    one = result.table.filter(pl.col("level") == "product_store", pl.col("product_id") == "P1").sort("forecast_date")
    assert one.height == forecast.HORIZON
    assert one["forecast_date"][0] == D0 + dt.timedelta(days=len(y))
    expected = np.tile(week, 5)[: forecast.HORIZON]  # day len(y) has the weekday of day 0
    assert one["forecast_units"].to_numpy() == pytest.approx(expected, rel=0.05)
    # Every category-store pair is forecast; product-store only where the product sells most days.
    assert set(result.table.filter(pl.col("level") == "category_store").select("store_id", "category").unique().rows()) == {("S1", "A"), ("S2", "B")}


def test_forecast_beats_seasonal_naive_on_noisy_weekly_demand_and_skips_sparse_products():
    rng = np.random.default_rng(2)
    days = 120
    weekday = (np.arange(days) + 3) % 7
    level = 8 * (1 + 0.4 * (weekday >= 4)) * (1 + 0.2 * np.arange(days) / 365)
    units = {(s, p): rng.poisson(level) for s in ("S1", "S2") for p in ("P1", "P2")}
    units[("S1", "P3")] = (rng.random(days) < 0.1).astype(int)  # sells one day in ten
    result = forecast.build_demand_forecast(_daily_facts(units), PRODUCTS)
    accuracy = {r["level"]: r for r in result.accuracy.iter_rows(named=True)}
    for row in accuracy.values():
        assert row["holdout_days"] == forecast.HORIZON
        assert row["mase_model"] < row["mase_seasonal_naive"], row
    assert accuracy["product_store"]["series"] == 4
    assert "P3" not in result.table.filter(pl.col("level") == "product_store")["product_id"].to_list()
    assert (result.table["forecast_units"] >= 0).all()


def _priced_sales(curves: dict[str, float], days: int = 150, every: int = 5, seed: int = 1) -> pl.DataFrame:
    """Lines of products whose price moves every `every` days and whose units follow
    100 · (price / 20) ** elasticity exactly; a steady product fills the rest of each day."""
    rng = np.random.default_rng(seed)
    rows = []
    for product, e in curves.items():
        price = 20.0
        for i in range(days):
            if i % every == 0:
                price = float(rng.choice([15, 17, 20, 22, 25]))
            day = D0 + dt.timedelta(days=i)
            rows.append((product, day, round(100 * (price / 20) ** e), Decimal(f"{price:.2f}"), Decimal("0.00")))
            # A promotion sells a lot at a cut, and must not bend the curve.
            if i % 7 == 0:
                rows.append((product, day, 500, Decimal(f"{price:.2f}"), Decimal("3.00")))
    for i in range(days):
        rows.append(("STEADY", D0 + dt.timedelta(days=i), 1000, Decimal("5.00"), Decimal("0.00")))
    schema = {"product_id": pl.String, "order_date": pl.Date, "quantity": pl.Int64, "unit_price": pl.Decimal(18, 2), "discount_amount": pl.Decimal(18, 2)}
    return pl.DataFrame(rows, schema=schema, orient="row").with_columns(pl.lit("Completed").alias("order_status"))


def _dim(prices: dict[str, tuple[str, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        [(p, True, "C", Decimal(price), Decimal(cost)) for p, (price, cost) in prices.items()],
        schema={"product_id": pl.String, "is_current": pl.Boolean, "category": pl.String, "list_price": pl.Decimal(18, 2), "cost": pl.Decimal(18, 2)},
        orient="row",
    )


def test_elasticity_of_a_synthetic_demand_curve_and_the_price_rule():
    facts = _priced_sales({"ELASTIC": -2.0, "INELASTIC": -0.3, "UNIT": -1.0})
    dim = _dim({"ELASTIC": ("20.00", "10.00"), "INELASTIC": ("20.00", "19.50"), "UNIT": ("20.00", "8.00"), "STEADY": ("5.00", "1.00")})
    got = {r["product_id"]: r for r in pricing.build_price_elasticity(facts, dim).iter_rows(named=True)}
    assert set(got) == {"ELASTIC", "INELASTIC", "UNIT"}  # STEADY never changes price
    assert got["ELASTIC"]["price_elasticity"] == pytest.approx(-2.0, abs=0.05)
    assert got["INELASTIC"]["price_elasticity"] == pytest.approx(-0.3, abs=0.05)
    assert got["UNIT"]["price_elasticity"] == pytest.approx(-1.0, abs=0.05)
    assert got["ELASTIC"]["price_change_events"] >= pricing.MIN_EVENTS
    assert (got["ELASTIC"]["recommended_price"], got["ELASTIC"]["price_action"]) == (Decimal("19.00"), "decrease")
    assert (got["UNIT"]["recommended_price"], got["UNIT"]["price_action"]) == (Decimal("20.00"), "keep")
    # +5% is 21.00, under the floor 19.50 × 1.1 = 21.45.
    assert (got["INELASTIC"]["recommended_price"], got["INELASTIC"]["price_action"]) == (Decimal("21.45"), "margin_floor")
    # (19.00 − 10.00) × the last 30 days' units a day × 365
    recent = facts.filter(pl.col("product_id") == "ELASTIC", pl.col("order_date") > facts["order_date"].max() - dt.timedelta(days=30))
    assert float(got["ELASTIC"]["projected_annual_margin"]) == pytest.approx(9 * recent["quantity"].sum() / 30 * 365, abs=0.01)


def test_a_product_needs_ten_price_changes():
    facts = _priced_sales({"FEW": -2.0}, days=45, every=5)  # at most 8 changes
    assert pricing.build_price_elasticity(facts, _dim({"FEW": ("20.00", "5.00")})).is_empty()
    assert pricing.build_price_elasticity(facts, _dim({"FEW": ("20.00", "5.00")}), min_events=3).height == 1


@pytest.mark.parametrize(("elasticity", "cost", "expected"), [
    (-1.5, "5.00", ("10.00", "keep")),          # the boundary itself keeps the price
    (-1.5001, "5.00", ("9.50", "decrease")),
    (-0.5, "5.00", ("10.00", "keep")),
    (-0.4999, "5.00", ("10.50", "increase")),
    (-3.0, "8.63", ("9.50", "decrease")),       # floor 9.493 rounds up to 9.50: exactly the rule's price
    (-3.0, "8.64", ("9.51", "margin_floor")),   # floor 9.504 → 9.51, above 9.50
    (-1.0, "9.50", ("10.45", "margin_floor")),  # even a kept price is held at the floor
])
def test_the_seed_price_rule_at_its_boundaries(elasticity, cost, expected):
    price, action = pricing.recommend(Decimal("10.00"), Decimal(cost), elasticity)
    assert (price, action) == (Decimal(expected[0]), expected[1])


def test_the_price_steps_round_half_even_to_the_cent():
    assert pricing.recommend(Decimal("0.10"), Decimal("0"), 0.0)[0] == Decimal("0.10")  # 10.5 cents → 10
    assert pricing.recommend(Decimal("0.30"), Decimal("0"), 0.0)[0] == Decimal("0.32")  # 31.5 cents → 32
    assert pricing.recommend(Decimal("10.99"), Decimal("0"), -2.0)[0] == Decimal("10.44")  # 1044.05 → 1044


def test_churn_score_orders_customers_by_how_unusual_their_silence_is():
    as_of = D0 + dt.timedelta(days=119)

    def orders(customer: str, days: range) -> list[tuple]:
        return [(customer, f"{customer}-{d}", D0 + dt.timedelta(days=d), Decimal("10.00"), "Completed") for d in days]

    rows = (
        orders("WEEKLY_SILENT", range(0, 90, 7))      # a weekly buyer, silent 36 days
        + orders("MONTHLY_SILENT", range(0, 90, 30))  # a monthly buyer, silent 59 days
        + orders("SLOW_RECENT", range(0, 120, 40))    # buys every 40 days, last 39 days ago
        + orders("WEEKLY_RECENT", range(0, 120, 7))   # weekly, last 1 day ago
    )
    facts = pl.DataFrame(rows, schema={"customer_id": pl.String, "order_id": pl.String, "order_date": pl.Date, "sales_total": pl.Decimal(18, 2), "order_status": pl.String}, orient="row")
    ids = ["WEEKLY_SILENT", "MONTHLY_SILENT", "SLOW_RECENT", "WEEKLY_RECENT", "NEVER"]
    dim = pl.DataFrame({
        "customer_key": list(range(1, 6)), "customer_id": ids, "is_current": [True] * 5,
        "valid_from": [dt.datetime(2025, 12, 1, tzinfo=dt.timezone.utc)] * 5,
    })
    scores = churn.score_customers(facts, dim, as_of)
    by_id = dict(zip(scores["customer_id"], scores["churn_score"]))
    assert set(by_id) == set(ids)  # a customer who never bought is scored too
    assert by_id["WEEKLY_SILENT"] > by_id["MONTHLY_SILENT"] > by_id["SLOW_RECENT"] > by_id["WEEKLY_RECENT"]
    assert dict(zip(scores["customer_id"], scores["risk_tier"]))["WEEKLY_SILENT"] == "High"
    assert dict(zip(scores["customer_id"], scores["risk_tier"]))["WEEKLY_RECENT"] == "Low"
    assert dict(zip(scores["customer_id"], scores["days_since_purchase"]))["WEEKLY_SILENT"] == 119 - 84


def test_auc_is_the_chance_a_positive_outscores_a_negative():
    assert churn.auc(pl.Series([0.1, 0.4, 0.35, 0.8]), pl.Series([False, False, True, True])) == 0.75
    assert churn.auc(pl.Series([0.5, 0.5]), pl.Series([False, True])) == 0.5
    assert churn.auc(pl.Series([0.5]), pl.Series([True])) is None


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """120 days at scale 0.1, through the whole pipeline in one run."""
    root = tmp_path_factory.mktemp("planted")
    start, days = dt.date(2026, 1, 1), 120
    summary = generate(root / "landing", start, days, seed=11, scale=0.1)
    lake = make_lake(root / "lake", root / "landing", start=start)
    result = lake.run(start, start + dt.timedelta(days=days - 1))
    assert result.success
    return summary, lake, result


def test_the_planted_bundles_are_the_top_product_rules_by_lift(planted):
    summary, lake, _ = planted
    rules = lake.read("gold/association_rules").filter(pl.col("level") == "product").sort("lift", descending=True)
    planted_pairs = {frozenset(p) for p in summary.signals.bundles}
    top = [frozenset(a + c) for a, c in zip(rules["antecedent"].to_list(), rules["consequent"].to_list())][: 2 * len(planted_pairs)]
    assert set(top) == planted_pairs
    assert rules["lift"][2 * len(planted_pairs) - 1] > 3  # chance is 1


# Stated tolerance: within three standard errors of the estimate, and within 0.6.
def test_the_planted_elasticities_are_recovered(planted):
    summary, lake, _ = planted
    got = {r["product_id"]: r for r in lake.read("gold/price_elasticity").iter_rows(named=True)}
    for product, elasticity in summary.signals.elasticity.items():
        row = got[product]
        error = abs(row["price_elasticity"] - elasticity)
        assert error <= min(0.6, 3 * row["elasticity_stderr"]), (product, elasticity, row["price_elasticity"], row["elasticity_stderr"])
        expected_action = "decrease" if elasticity < -1.5 else "increase" if elasticity > -0.5 else "keep"
        assert row["price_action"] in (expected_action, "margin_floor"), (product, row)


def test_the_forecast_beats_seasonal_naive_on_the_held_out_weeks(planted):
    _, lake, result = planted
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == "beats_seasonal_naive"]
    assert evaluation.passed
    [materialization] = result.asset_materializations_for_node("gold__demand_forecast")
    meta = materialization.metadata
    for level in ("product_store", "category_store"):
        assert meta[f"mase_model_{level}"].value < meta[f"mase_seasonal_naive_{level}"].value
    table = lake.read("gold/demand_forecast")
    assert table.group_by("level", "store_id", "category", "product_id").len()["len"].unique().to_list() == [forecast.HORIZON]


def test_planted_churners_score_higher_than_active_customers(planted):
    summary, lake, _ = planted
    scores = lake.read("gold/customer_churn_risk").filter(pl.col("total_orders") > 0)
    end = summary.start + dt.timedelta(days=summary.days - 1)
    gone = {c for c, day in summary.signals.churned.items() if (end - day).days >= 30}
    labelled = scores.with_columns(pl.col("customer_id").is_in(list(gone)).alias("churned"))
    assert labelled["churned"].sum() > 50
    assert churn.auc(labelled["churn_score"], labelled["churned"]) > 0.8
