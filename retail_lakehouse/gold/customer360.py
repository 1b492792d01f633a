"""Customer 360 (seed 004 §2): one row per current customer combining sales, channels, categories
and loyalty, with the seed's RFM segment rules. Pure Polars.

Recency is measured against the newest order date in the facts, not the wall clock, so a re-run
gives the same table. Sales and loyalty are aggregated separately before the join (the seed's
single multi-way LEFT JOIN would multiply points by lines).
"""

import polars as pl

from retail_lakehouse.catalog import schema
from retail_lakehouse.gold.star import UNKNOWN_KEY

CUSTOMER_360_SCHEMA = schema("gold", "customer_360")
# What it reads of each input, so that a run loads these columns of a year of facts, not every one.
CUSTOMER_360_READS = {
    "dim_customer": ("customer_key", "customer_id", "valid_from", "is_current", "email", "customer_segment"),
    "fact_sales": ("customer_id", "order_id", "sales_total", "order_date", "sales_channel", "product_id"),
    "dim_product": ("product_id", "is_current", "category"),
    "loyalty": ("customer_id", "points_earned", "points_redeemed"),
}


def build_customer_360(
    dim_customer: pl.DataFrame, fact_sales: pl.DataFrame, dim_product: pl.DataFrame, loyalty: pl.DataFrame
) -> pl.DataFrame:
    versions = dim_customer.filter(pl.col("customer_key") != UNKNOWN_KEY)
    registered = versions.group_by("customer_id").agg(pl.col("valid_from").min().dt.date().alias("registration_date"))
    current = versions.filter(pl.col("is_current")).select("customer_id", "email", pl.col("customer_segment").alias("segment"))
    as_of = fact_sales["order_date"].max()
    orders = fact_sales.group_by("customer_id").agg(
        pl.col("order_id").n_unique().cast(pl.Int64).alias("total_transactions"),
        pl.col("sales_total").sum().alias("lifetime_value"),
        pl.col("order_date").max().alias("last_purchase_date"),
        *[
            pl.col("order_id").filter(pl.col("sales_channel") == channel).n_unique().cast(pl.Int64).alias(f"{channel.lower()}_transactions")
            for channel in ("Online", "Store", "Mobile")
        ],
    )
    categories = (
        fact_sales.select("customer_id", "product_id")
        .join(dim_product.filter(pl.col("is_current")).select("product_id", "category"), on="product_id")
        .group_by("customer_id")
        .agg(pl.col("category").drop_nulls().unique().sort().str.join(",").alias("preferred_categories"))
    )
    points = loyalty.group_by("customer_id").agg(
        pl.col("points_earned").sum().cast(pl.Int64).alias("total_points_earned"),
        pl.col("points_redeemed").sum().cast(pl.Int64).alias("total_points_redeemed"),
    )
    days = (pl.lit(as_of) - pl.col("last_purchase_date")).dt.total_days().cast(pl.Int64)
    out = (
        current.join(registered, on="customer_id", how="left")
        .join(orders, on="customer_id", how="left")
        .join(categories, on="customer_id", how="left")
        .join(points, on="customer_id", how="left")
        .with_columns(
            days.alias("days_since_purchase") if as_of is not None else pl.lit(None, pl.Int64).alias("days_since_purchase"),
            *[pl.col(c).fill_null(0) for c in ("total_transactions", "online_transactions", "store_transactions", "mobile_transactions",
                                                 "total_points_earned", "total_points_redeemed")],
        )
    )
    recency, frequency = pl.col("days_since_purchase"), pl.col("total_transactions")
    segment = (
        pl.when((recency <= 30) & (frequency >= 4)).then(pl.lit("Champion"))
        .when((recency <= 90) & (pl.col("lifetime_value") > 1000)).then(pl.lit("Loyal"))
        .when(recency > 180).then(pl.lit("At Risk"))
        .otherwise(pl.lit("Potential"))
    )
    return out.with_columns(segment.alias("rfm_segment")).select(list(CUSTOMER_360_SCHEMA)).cast(CUSTOMER_360_SCHEMA).sort("customer_id")
