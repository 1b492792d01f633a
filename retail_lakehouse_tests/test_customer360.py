"""Customer 360 on a hand-worked example: metrics, channels, categories, points, RFM rules."""

import datetime as dt
from decimal import Decimal

import polars as pl

from retail_lakehouse.gold.customer360 import build_customer_360

UTC = dt.timezone.utc
D = dt.date(2026, 10, 31)


def _dim():
    t = lambda d: dt.datetime(2026, 1, d, tzinfo=UTC)  # noqa: E731
    return pl.DataFrame({
        "customer_key": [-1, 1, 2, 3, 4],
        "customer_id": ["UNKNOWN", "C1", "C1", "C2", "C3"],
        "email": [None, "old@x.com", "c1@x.com", "c2@x.com", "c3@x.com"],
        "customer_segment": [None, "Regular", "VIP", "Regular", "New"],
        "valid_from": [dt.datetime(1900, 1, 1, tzinfo=UTC), t(1), t(5), t(2), t(3)],
        "is_current": [True, False, True, True, True],
    })


def _facts(rows):
    return pl.DataFrame(
        [{"order_id": o, "customer_id": c, "product_id": p, "order_date": d, "sales_channel": ch, "sales_total": Decimal(v)} for o, c, p, d, ch, v in rows],
        schema={"order_id": pl.String, "customer_id": pl.String, "product_id": pl.String, "order_date": pl.Date, "sales_channel": pl.String, "sales_total": pl.Decimal(18, 2)},
    )


def test_customer_360_metrics_and_rfm_segments_by_hand():
    days = lambda n: D - dt.timedelta(days=n)  # noqa: E731
    facts = _facts([
        # C1: 4 orders in the last 30 days → Champion; two lines in O1.
        ("O1", "C1", "P1", days(1), "Online", "10.00"), ("O1", "C1", "P2", days(1), "Online", "5.00"),
        ("O2", "C1", "P1", days(5), "Store", "1.00"), ("O3", "C1", "P1", days(20), "Mobile", "1.00"),
        ("O4", "C1", "P1", days(0), "Online", "1.00"),
        # C2: one big order 60 days ago → Loyal (≤ 90 days and > 1000).
        ("O5", "C2", "P2", days(60), "Store", "1000.01"),
        # C3: 200 days ago → At Risk.
        ("O6", "C3", "P1", days(200), "Online", "3.00"),
    ])
    products = pl.DataFrame({"product_id": ["P1", "P2", "P2"], "category": ["Toys", "Food", "Old"], "is_current": [True, True, False]})
    loyalty = pl.DataFrame({"customer_id": ["C1", "C1", "C2"], "points_earned": [10, 5, 0], "points_redeemed": [0, 3, 7]})
    out = {r["customer_id"]: r for r in build_customer_360(_dim(), facts, products, loyalty).iter_rows(named=True)}
    assert set(out) == {"C1", "C2", "C3"}
    c1 = out["C1"]
    assert (c1["email"], c1["segment"], c1["registration_date"]) == ("c1@x.com", "VIP", dt.date(2026, 1, 1))
    assert (c1["total_transactions"], c1["lifetime_value"], c1["last_purchase_date"], c1["days_since_purchase"]) == (4, Decimal("18.00"), D, 0)
    assert (c1["online_transactions"], c1["store_transactions"], c1["mobile_transactions"]) == (2, 1, 1)
    assert c1["preferred_categories"] == "Food,Toys"
    assert (c1["total_points_earned"], c1["total_points_redeemed"], c1["rfm_segment"]) == (15, 3, "Champion")
    assert (out["C2"]["rfm_segment"], out["C2"]["total_points_redeemed"]) == ("Loyal", 7)
    assert (out["C3"]["rfm_segment"], out["C3"]["total_points_earned"], out["C3"]["days_since_purchase"]) == ("At Risk", 0, 200)
