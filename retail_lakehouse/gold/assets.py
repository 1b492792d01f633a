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
from retail_lakehouse.gold.customer360 import build_customer_360
from retail_lakehouse.policies import RETRY, SINGLE_RUN
from retail_lakehouse.quality import checks
from retail_lakehouse.quality.freshness import freshness_policy
from retail_lakehouse.quality.policy import check_specs_for
from retail_lakehouse.storage import PARTITION_COLUMN

# The calendar covers the partitions and a forecasting horizon after them.
CALENDAR_YEARS = 3

_COMMON = {"group_name": "gold", "kinds": {"polars", "delta"}, "backfill_policy": SINGLE_RUN, "retry_policy": RETRY}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def build_gold_assets(partitions_def: dg.PartitionsDefinition, start_date: dt.date) -> list[dg.AssetsDefinition]:
    def partitioned(column: str) -> dict:
        # Facts and aggregates go stale after 24 h without a new partition, fail after 30 h.
        return {"partitions_def": partitions_def, "metadata": {PARTITION_COLUMN: column}, "freshness_policy": freshness_policy()}

    def checked(name: str) -> dict:
        return {"key": ["gold", name], "check_specs": check_specs_for(dg.AssetKey(["gold", name]))}

    def publish(name: str, frame: pl.DataFrame, *extra: dg.AssetCheckResult):
        """The table, then its contract check and any other checks of the policy."""
        yield dg.Output(frame)
        yield checks.contract_result(("gold", name), frame)
        yield from extra

    @dg.asset(**checked("dim_customer"), ins={"history": dg.AssetIn(["silver", "customer_history"])}, **_COMMON)
    def dim_customer(history: pl.LazyFrame):
        """Customers as SCD Type 2: one row per customer version (valid_from..valid_to), plus the unknown member −1."""
        dim = star.build_dim_customer(history.collect())
        yield from publish("dim_customer", dim, checks.scd2_intervals_result(("gold", "dim_customer"), dim, "customer_id", "customer_key"))

    @dg.asset(**checked("dim_product"), ins={"history": dg.AssetIn(["silver", "product_history"])}, **_COMMON)
    def dim_product(history: pl.LazyFrame):
        """Products as SCD Type 2: one row per product version (prices, names), plus the unknown member −1."""
        dim = star.build_dim_product(history.collect())
        yield from publish("dim_product", dim, checks.scd2_intervals_result(("gold", "dim_product"), dim, "product_id", "product_key"))

    @dg.asset(**checked("dim_store"), ins={"stores": dg.AssetIn(["silver", "store"])}, **_COMMON)
    def dim_store(stores: pl.LazyFrame):
        """Stores: one row per store_id (current attributes), plus the unknown member −1."""
        yield from publish("dim_store", star.build_dim_store(stores.collect()))

    @dg.asset(**checked("dim_date"), **_COMMON)
    def dim_date():
        """The calendar: one row per date from the first partition, for three years."""
        last = start_date.replace(year=start_date.year + CALENDAR_YEARS) - dt.timedelta(days=1)
        yield from publish("dim_date", star.build_dim_date(start_date, last))

    @dg.asset(
        **checked("fact_sales"),
        ins={
            "sales": dg.AssetIn(["silver", "sales"]),
            "dim_customer": dg.AssetIn(["gold", "dim_customer"]),
            "dim_product": dg.AssetIn(["gold", "dim_product"]),
        },
        **partitioned("order_date"),
        **_COMMON,
    )
    def fact_sales(sales: pl.LazyFrame, dim_customer: pl.LazyFrame, dim_product: pl.LazyFrame):
        """One row per order line, keyed to the customer and product versions valid at order time."""
        facts = star.build_fact_sales(sales.collect(), dim_customer.collect(), dim_product.collect(), _now())
        yield from publish("fact_sales", facts, checks.orphans_result(facts))

    @dg.asset(**checked("fact_payment"), ins={"payments": dg.AssetIn(["silver", "payment"])}, **partitioned("transaction_date"), **_COMMON)
    def fact_payment(payments: pl.LazyFrame):
        """One row per payment (refunds folded in), by transaction date; card numbers only as tokens."""
        facts = star.build_fact_payment(payments.collect(), _now())
        yield from publish("fact_payment", facts, checks.refunds_within_payments_result(facts))

    @dg.asset(**checked("agg_daily_sales"), ins={"facts": dg.AssetIn(["gold", "fact_sales"])}, **partitioned("sales_date"), **_COMMON)
    def agg_daily_sales(facts: pl.LazyFrame):
        """One row per sales date and channel: revenue, quantity, orders, lines, customers, returns, AOV."""
        fact_sales = facts.collect()
        agg = star.build_agg_daily_sales(fact_sales)
        yield from publish("agg_daily_sales", agg, checks.revenue_reconciles_result(fact_sales, agg))

    @dg.asset(**checked("sales_performance"), ins={"facts": dg.AssetIn(["gold", "fact_sales"])}, **partitioned("sales_date"), **_COMMON)
    def sales_performance(facts: pl.LazyFrame):
        """Seed 000 §9.1: per day and channel, orders, revenue, average line value, returns and return rate."""
        yield from publish("sales_performance", star.build_sales_performance(facts.collect()))

    @dg.asset(
        **checked("customer_lifetime_value"),
        ins={"facts": dg.AssetIn(["gold", "fact_sales"]), "dim_customer": dg.AssetIn(["gold", "dim_customer"])},
        **_COMMON,
    )
    def customer_lifetime_value(facts: pl.LazyFrame, dim_customer: pl.LazyFrame):
        """Seed 000 §9.2: one row per customer with sales: orders, lifetime value, recency, AOV."""
        yield from publish("customer_lifetime_value", star.build_customer_lifetime_value(facts.collect(), dim_customer.collect()))

    @dg.asset(
        **checked("product_return_analysis"),
        ins={"facts": dg.AssetIn(["gold", "fact_sales"]), "dim_product": dg.AssetIn(["gold", "dim_product"])},
        **_COMMON,
    )
    def product_return_analysis(facts: pl.LazyFrame, dim_product: pl.LazyFrame):
        """Seed 000 §9.3: one row per product with sales: units sold and returned, refunds, rates."""
        yield from publish("product_return_analysis", star.build_product_return_analysis(facts.collect(), dim_product.collect()))

    @dg.asset(
        **checked("customer_360"),
        ins={
            "dim_customer": dg.AssetIn(["gold", "dim_customer"]),
            "facts": dg.AssetIn(["gold", "fact_sales"]),
            "dim_product": dg.AssetIn(["gold", "dim_product"]),
            "loyalty": dg.AssetIn(["silver", "loyalty"]),
        },
        **_COMMON,
    )
    def customer_360(dim_customer: pl.LazyFrame, facts: pl.LazyFrame, dim_product: pl.LazyFrame, loyalty: pl.LazyFrame):
        """Seed 004 §2: one row per current customer: orders, channels, categories, loyalty points, RFM segment."""
        frame = build_customer_360(dim_customer.collect(), facts.collect(), dim_product.collect(), loyalty.collect())
        yield from publish("customer_360", frame)

    return [
        customer_360,
        dim_customer, dim_product, dim_store, dim_date, fact_sales, fact_payment,
        agg_daily_sales, sales_performance, customer_lifetime_value, product_return_analysis,
    ]
