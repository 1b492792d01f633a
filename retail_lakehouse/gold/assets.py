"""Gold assets: the star schema (seed 000 §1.3; seed 004 data model) and the seed 000 §9 reports.

Dimensions are unpartitioned and rebuilt from silver history (cheap, and surrogate keys are
deterministic, so facts written earlier keep pointing at the same versions). Facts and daily
aggregates are partitioned by their business date; the late-data window of each run re-derives the
dates that returns and refunds changed.
"""

import datetime as dt

import dagster as dg
import polars as pl

from retail_lakehouse.gold import star
from retail_lakehouse.partitions import window_dates
from retail_lakehouse.policies import RETRY, SINGLE_RUN
from retail_lakehouse.storage import PARTITION_COLUMN

# The calendar covers the partitions and a forecasting horizon after them.
CALENDAR_YEARS = 3

_COMMON = {"group_name": "gold", "kinds": {"polars", "delta"}, "backfill_policy": SINGLE_RUN, "retry_policy": RETRY}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def build_gold_assets(partitions_def: dg.PartitionsDefinition, start_date: dt.date) -> list[dg.AssetsDefinition]:
    def partitioned(column: str) -> dict:
        return {"partitions_def": partitions_def, "metadata": {PARTITION_COLUMN: column}}

    @dg.asset(key=["gold", "dim_customer"], ins={"history": dg.AssetIn(["silver", "customer_history"])}, **_COMMON)
    def dim_customer(history: pl.LazyFrame) -> pl.DataFrame:
        """Customers as SCD Type 2: one row per customer version (valid_from..valid_to), plus the unknown member −1."""
        return star.build_dim_customer(history.collect())

    @dg.asset(key=["gold", "dim_product"], ins={"history": dg.AssetIn(["silver", "product_history"])}, **_COMMON)
    def dim_product(history: pl.LazyFrame) -> pl.DataFrame:
        """Products as SCD Type 2: one row per product version (prices, names), plus the unknown member −1."""
        return star.build_dim_product(history.collect())

    @dg.asset(key=["gold", "dim_store"], ins={"stores": dg.AssetIn(["silver", "store"])}, **_COMMON)
    def dim_store(stores: pl.LazyFrame) -> pl.DataFrame:
        """Stores: one row per store_id (current attributes), plus the unknown member −1."""
        return star.build_dim_store(stores.collect())

    @dg.asset(key=["gold", "dim_date"], **_COMMON)
    def dim_date() -> pl.DataFrame:
        """The calendar: one row per date from the first partition, for three years."""
        last = start_date.replace(year=start_date.year + CALENDAR_YEARS) - dt.timedelta(days=1)
        return star.build_dim_date(start_date, last)

    @dg.asset(
        key=["gold", "fact_sales"],
        ins={
            "sales": dg.AssetIn(["silver", "sales"]),
            "dim_customer": dg.AssetIn(["gold", "dim_customer"]),
            "dim_product": dg.AssetIn(["gold", "dim_product"]),
        },
        **partitioned("order_date"),
        **_COMMON,
    )
    def fact_sales(sales: pl.LazyFrame, dim_customer: pl.LazyFrame, dim_product: pl.LazyFrame) -> pl.DataFrame:
        """One row per order line, keyed to the customer and product versions valid at order time."""
        return star.build_fact_sales(sales.collect(), dim_customer.collect(), dim_product.collect(), _now())

    @dg.asset(key=["gold", "fact_payment"], ins={"payments": dg.AssetIn(["silver", "payment"])}, **partitioned("transaction_date"), **_COMMON)
    def fact_payment(payments: pl.LazyFrame) -> pl.DataFrame:
        """One row per payment (refunds folded in), by transaction date; card numbers only as tokens."""
        return star.build_fact_payment(payments.collect(), _now())

    @dg.asset(key=["gold", "agg_daily_sales"], ins={"facts": dg.AssetIn(["gold", "fact_sales"])}, **partitioned("sales_date"), **_COMMON)
    def agg_daily_sales(facts: pl.LazyFrame) -> pl.DataFrame:
        """One row per sales date and channel: revenue, quantity, orders, lines, customers, returns, AOV."""
        return star.build_agg_daily_sales(facts.collect())

    @dg.asset(key=["gold", "sales_performance"], ins={"facts": dg.AssetIn(["gold", "fact_sales"])}, **partitioned("sales_date"), **_COMMON)
    def sales_performance(facts: pl.LazyFrame) -> pl.DataFrame:
        """Seed 000 §9.1: per day and channel, orders, revenue, average line value, returns and return rate."""
        return star.build_sales_performance(facts.collect())

    @dg.asset(
        key=["gold", "customer_lifetime_value"],
        ins={"facts": dg.AssetIn(["gold", "fact_sales"]), "dim_customer": dg.AssetIn(["gold", "dim_customer"])},
        **_COMMON,
    )
    def customer_lifetime_value(facts: pl.LazyFrame, dim_customer: pl.LazyFrame) -> pl.DataFrame:
        """Seed 000 §9.2: one row per customer with sales: orders, lifetime value, recency, AOV."""
        return star.build_customer_lifetime_value(facts.collect(), dim_customer.collect())

    @dg.asset(
        key=["gold", "product_return_analysis"],
        ins={"facts": dg.AssetIn(["gold", "fact_sales"]), "dim_product": dg.AssetIn(["gold", "dim_product"])},
        **_COMMON,
    )
    def product_return_analysis(facts: pl.LazyFrame, dim_product: pl.LazyFrame) -> pl.DataFrame:
        """Seed 000 §9.3: one row per product with sales: units sold and returned, refunds, rates."""
        return star.build_product_return_analysis(facts.collect(), dim_product.collect())

    return [
        dim_customer, dim_product, dim_store, dim_date, fact_sales, fact_payment,
        agg_daily_sales, sales_performance, customer_lifetime_value, product_return_analysis,
    ]
