"""Price elasticity and the recommended price (seed 004 §5). Pure Polars.

A product's price history is the unit price of its undiscounted lines, day by day (carried over
days without such a sale); a regime is a run of days at one price. Its demand is measured as its
share of the other products' undiscounted units on those days, which takes out the weekly
pattern and the trend that move every product at once (the others only, so that the product's own
response does not damp its share). The elasticity is the slope of log share on log price over
the regimes, weighted by the units sold in them (least squares: the constant-elasticity demand
curve q = a · p^e). The seed averages one ratio per price change, which at daily noise swings
widely; the slope uses every day of each regime. A product needs at least `MIN_EVENTS` changes of
more than 1%, as in the seed.

The seed's rule: elasticity below −1.5 (elastic) lowers the price 5%, above −0.5 (inelastic)
raises it 5%, otherwise the price stays. The seed drops a product whose new price is not above
cost + 10%; here the product keeps its row with the price held at that floor (`margin_floor`).
"""

import math
from decimal import Decimal
from fractions import Fraction

import polars as pl

from retail_lakehouse.catalog import MONEY, schema

PRICE_ELASTICITY_SCHEMA = schema("gold", "price_elasticity")
PRICING_READS = {
    "fact_sales": ("product_id", "order_date", "quantity", "unit_price", "discount_amount", "order_status"),
    "dim_product": ("product_id", "is_current", "category", "list_price", "cost"),
}
MIN_EVENTS = 10
MIN_CHANGE = 0.01
ELASTIC, INELASTIC = -1.5, -0.5
STEP_PERCENT = 5
MARGIN_FLOOR_PERCENT = 110
RECENT_DAYS = 30


def recommend(price: Decimal, cost: Decimal | None, elasticity: float) -> tuple[Decimal, str]:
    """The seed's rule in whole cents: (recommended price, action). The 5% steps round half-even;
    the floor, cost + 10%, rounds up to the cent."""
    cents = Fraction(price) * 100
    if elasticity < ELASTIC:
        ruled, action = round(cents * (100 - STEP_PERCENT) / 100), "decrease"
    elif elasticity > INELASTIC:
        ruled, action = round(cents * (100 + STEP_PERCENT) / 100), "increase"
    else:
        ruled, action = round(cents), "keep"
    floor = math.ceil(Fraction(cost or 0) * MARGIN_FLOOR_PERCENT)
    if ruled < floor:
        ruled, action = floor, "margin_floor"
    return Decimal(ruled).scaleb(-2), action


def recommend_price(frame: pl.DataFrame) -> pl.DataFrame:
    """Adds recommended_price and price_action to rows of current_price, cost and price_elasticity."""
    rows = [recommend(p, c, e) for p, c, e in frame.select("current_price", "cost", "price_elasticity").iter_rows()]
    return frame.with_columns(
        pl.Series("recommended_price", [r[0] for r in rows], dtype=MONEY),
        pl.Series("price_action", [r[1] for r in rows], dtype=pl.String),
    )


def _slope(frame: pl.DataFrame) -> pl.DataFrame:
    """Weighted least-squares slope of y on x per product, and its standard error (residual
    variance taken as inversely proportional to the weight)."""
    w, x, y = pl.col("weight"), pl.col("x"), pl.col("y")
    mean = lambda v: (w * v).sum() / w.sum()  # noqa: E731
    stats = frame.group_by("product_id").agg(
        mean(x).alias("mx"), mean(y).alias("my"), pl.len().alias("n"),
    )
    frame = frame.join(stats, on="product_id")
    dx, dy = pl.col("x") - pl.col("mx"), pl.col("y") - pl.col("my")
    fitted = frame.group_by("product_id").agg(
        (w * dx * dy).sum().alias("sxy"), (w * dx * dx).sum().alias("sxx"), pl.col("n").first(),
    ).with_columns((pl.col("sxy") / pl.col("sxx")).alias("price_elasticity"))
    residual = frame.join(fitted.select("product_id", "price_elasticity"), on="product_id").with_columns(
        (pl.col("y") - pl.col("my") - pl.col("price_elasticity") * (pl.col("x") - pl.col("mx"))).alias("r")
    ).group_by("product_id").agg((pl.col("weight") * pl.col("r") ** 2).sum().alias("ssr"))
    return fitted.join(residual, on="product_id").with_columns(
        pl.when(pl.col("n") > 2)
        .then((pl.col("ssr") / (pl.col("n") - 2) / pl.col("sxx")).sqrt())
        .alias("elasticity_stderr")
    ).select("product_id", "price_elasticity", "elasticity_stderr")


def build_price_elasticity(fact_sales: pl.DataFrame, dim_product: pl.DataFrame, min_events: int = MIN_EVENTS) -> pl.DataFrame:
    sold = fact_sales.filter(pl.col("order_status") != "Cancelled")
    if sold.is_empty():
        return pl.DataFrame(schema=PRICE_ELASTICITY_SCHEMA)
    last = sold["order_date"].max()
    full = sold.filter(pl.col("discount_amount") == 0)
    # The day's price is its most frequent unit price (the lowest of a tie). Counted per price and
    # taken first after a sort, rather than with `mode()`: the same result at a third of the time.
    daily = (
        full.lazy().group_by("product_id", "order_date", "unit_price").agg(pl.len().alias("lines"), pl.col("quantity").sum().alias("units"))
        .sort("lines", "unit_price", descending=[True, False])
        .group_by("product_id", "order_date")
        .agg(pl.col("units").sum(), pl.col("unit_price").first().cast(pl.Float64).alias("price"))
        .collect()
    )
    totals = full.group_by("order_date").agg(pl.col("quantity").sum().alias("all_units"))
    # Every day from the product's first undiscounted sale, its price carried over quiet days.
    spans = daily.group_by("product_id").agg(pl.col("order_date").min().alias("first"))
    grid = (
        spans.with_columns(pl.date_ranges("first", pl.lit(last)).alias("order_date")).explode("order_date")
        .join(daily, on=["product_id", "order_date"], how="left")
        .join(totals, on="order_date", how="left")
        .sort("product_id", "order_date")
        .with_columns(pl.col("price").forward_fill().over("product_id"), pl.col("units").fill_null(0), pl.col("all_units").fill_null(0))
    )
    changed = (pl.col("price") != pl.col("price").shift(1).over("product_id")).fill_null(False)
    regimes = (
        grid.with_columns(changed.cum_sum().over("product_id").alias("regime"))
        .group_by("product_id", "regime")
        .agg(pl.col("price").first(), pl.col("units").sum(), pl.col("all_units").sum())
        .sort("product_id", "regime")
    )
    step = (pl.col("price") / pl.col("price").shift(1).over("product_id") - 1).abs()
    events = regimes.with_columns(step.alias("step")).group_by("product_id").agg(
        (pl.col("step") > MIN_CHANGE).sum().cast(pl.Int64).alias("price_change_events")
    )
    # Against the other products' units, so the product's own response does not damp its share.
    others = pl.col("all_units") - pl.col("units")
    points = regimes.filter((pl.col("units") > 0) & (others > 0)).select(
        "product_id", pl.col("price").log().alias("x"), (pl.col("units") / others).log().alias("y"),
        pl.col("units").cast(pl.Float64).alias("weight"),
    )
    eligible = events.filter(pl.col("price_change_events") >= min_events)
    fitted = _slope(points.join(eligible, on="product_id", how="semi")).filter(pl.col("price_elasticity").is_finite())
    recent = sold.filter(pl.col("order_date") > last - pl.duration(days=RECENT_DAYS)).group_by("product_id").agg(
        (pl.col("quantity").sum() / RECENT_DAYS).alias("avg_daily_quantity")
    )
    current = dim_product.filter(pl.col("is_current")).select("product_id", "category", pl.col("list_price").alias("current_price"), "cost")
    out = (
        fitted.join(eligible, on="product_id").join(current, on="product_id").join(recent, on="product_id", how="left")
        .with_columns(pl.col("avg_daily_quantity").fill_null(0.0))
        .pipe(recommend_price)
    )
    margin = (pl.col("recommended_price").cast(pl.Float64) - pl.col("cost").cast(pl.Float64)) * pl.col("avg_daily_quantity") * 365
    out = out.with_columns(margin.round(2).cast(MONEY).alias("projected_annual_margin"))
    return out.select(list(PRICE_ELASTICITY_SCHEMA)).cast(PRICE_ELASTICITY_SCHEMA).sort("product_id")
