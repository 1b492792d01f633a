"""Churn risk (seed 000 phase 6): a score per current customer. Pure Polars.

A customer who buys at rate λ (orders a day) and is still active goes d days without an order with
probability exp(−λ·d), so the score 1 − exp(−λ·d) says how unusual the present silence is for
that customer: a weekly buyer silent for a month scores near 1, a twice-a-year buyer silent for a
month near 0.15. λ is smoothed toward the population's rate (one prior order, over the days the
population takes on average to place one), so a customer with a single order is neither certain
to have churned nor certain to be loyal. Days count to the newest order date in the facts, not to
the wall clock, so a re-run gives the same table.

Evaluated as it is used: scored as of `HOLDOUT_DAYS` before the newest date from the orders up to
then, against whether each customer then ordered again within those days (AUC, and the observed
rate of no further order per tier).
"""

import datetime as dt

import polars as pl

from retail_lakehouse.catalog import schema
from retail_lakehouse.gold.star import UNKNOWN_KEY

CUSTOMER_CHURN_RISK_SCHEMA = schema("gold", "customer_churn_risk")
CHURN_READS = {
    "fact_sales": ("customer_id", "order_id", "order_date", "sales_total", "order_status"),
    "dim_customer": ("customer_key", "customer_id", "is_current", "valid_from"),
}
HOLDOUT_DAYS = 30
HIGH, MEDIUM = 0.8, 0.5
PRIOR_ORDERS = 1.0


def score_customers(fact_sales: pl.DataFrame, dim_customer: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    """The churn score of every current customer registered by `as_of`, from orders up to it."""
    versions = dim_customer.filter(pl.col("customer_key") != UNKNOWN_KEY)
    registered = versions.group_by("customer_id").agg(pl.col("valid_from").min().dt.date().alias("registered"))
    current = versions.filter(pl.col("is_current")).select("customer_id").join(registered, on="customer_id")
    current = current.filter(pl.col("registered") <= as_of)
    sold = fact_sales.filter((pl.col("order_status") != "Cancelled") & (pl.col("order_date") <= as_of))
    orders = sold.group_by("customer_id").agg(
        pl.col("order_id").n_unique().cast(pl.Int64).alias("total_orders"),
        pl.col("sales_total").sum().alias("lifetime_value"),
        pl.col("order_date").min().alias("first_purchase_date"),
        pl.col("order_date").max().alias("last_purchase_date"),
    )
    frame = current.join(orders, on="customer_id", how="left").with_columns(pl.col("total_orders").fill_null(0))
    start = pl.min_horizontal("registered", "first_purchase_date")
    last_seen = pl.coalesce("last_purchase_date", "registered")
    frame = frame.with_columns(
        ((pl.lit(as_of) - start).dt.total_days() + 1).alias("tenure"),
        (pl.lit(as_of) - last_seen).dt.total_days().clip(0).cast(pl.Int64).alias("days_since_purchase"),
    )
    population = frame["total_orders"].sum() / max(frame["tenure"].sum(), 1)
    prior_days = PRIOR_ORDERS / population if population > 0 else 365.0
    rate = (pl.col("total_orders") + PRIOR_ORDERS) / (pl.col("tenure") + prior_days)
    score = 1 - (-rate * pl.col("days_since_purchase")).exp()
    tier = pl.when(pl.col("churn_score") >= HIGH).then(pl.lit("High")).when(pl.col("churn_score") >= MEDIUM).then(pl.lit("Medium")).otherwise(pl.lit("Low"))
    return (
        frame.with_columns((rate * 30).alias("orders_per_30_days"), score.alias("churn_score"))
        .with_columns(tier.alias("risk_tier"))
        .select(list(CUSTOMER_CHURN_RISK_SCHEMA)).cast(CUSTOMER_CHURN_RISK_SCHEMA).sort("customer_id")
    )


def build_customer_churn_risk(fact_sales: pl.DataFrame, dim_customer: pl.DataFrame) -> pl.DataFrame:
    if fact_sales.is_empty():
        return pl.DataFrame(schema=CUSTOMER_CHURN_RISK_SCHEMA)
    return score_customers(fact_sales, dim_customer, fact_sales["order_date"].max())


def auc(score: pl.Series, positive: pl.Series) -> float | None:
    """Area under the ROC curve: the chance a positive scores above a negative (ties count half)."""
    frame = pl.DataFrame({"score": score, "positive": positive}).with_columns(pl.col("score").rank("average").alias("rank"))
    n_pos = int(frame["positive"].sum())
    n_neg = frame.height - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    return float((frame.filter(pl.col("positive"))["rank"].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def evaluate(fact_sales: pl.DataFrame, dim_customer: pl.DataFrame, holdout_days: int = HOLDOUT_DAYS) -> dict:
    """The score as of `holdout_days` before the newest order date, against no order since then."""
    if fact_sales.is_empty():
        return {}
    last = fact_sales["order_date"].max()
    cutoff = last - dt.timedelta(days=holdout_days)
    if fact_sales["order_date"].min() > cutoff - dt.timedelta(days=holdout_days):
        return {}  # under two holdouts of history: too little to score from
    scored = score_customers(fact_sales, dim_customer, cutoff).filter(pl.col("total_orders") > 0)
    returned = fact_sales.filter((pl.col("order_date") > cutoff) & (pl.col("order_status") != "Cancelled")).select("customer_id").unique()
    labelled = scored.with_columns(~pl.col("customer_id").is_in(returned["customer_id"].implode()).alias("no_order"))
    tiers = labelled.group_by("risk_tier").agg(pl.len().alias("customers"), pl.col("no_order").mean().alias("no_order_rate"))
    return {
        "scored_as_of": cutoff,
        "customers": labelled.height,
        "no_order_share": float(labelled["no_order"].mean()) if labelled.height else None,
        "auc": auc(labelled["churn_score"], labelled["no_order"]),
        "tiers": tiers.sort("risk_tier"),
    }
