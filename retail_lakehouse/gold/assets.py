"""Gold assets: the star schema (seed 000 §1.3; seed 004 data model) and the seed 000 §9 reports.

Dimensions are unpartitioned and rebuilt from silver history (cheap, and surrogate keys are
deterministic, so facts written earlier keep pointing at the same versions). Facts and daily
aggregates are partitioned by their business date; the late-data window of each run re-derives the
dates that returns and refunds changed.
"""

import datetime as dt

import dagster as dg
import polars as pl
from pydantic import Field

from retail_lakehouse import catalog
from retail_lakehouse.engine import Engine, Source

from retail_lakehouse.gold import basket, charts, churn, forecast, pricing, star
from retail_lakehouse.gold.customer360 import CUSTOMER_360_READS, build_customer_360
from retail_lakehouse.policies import RETRY, SINGLE_RUN
from retail_lakehouse.quality import checks
from retail_lakehouse.quality.freshness import freshness_policy
from retail_lakehouse.quality.policy import check_specs_for
from retail_lakehouse.specs import asset_attrs
from retail_lakehouse.partitions import days_in, window_dates
from retail_lakehouse.storage import SHARED_COLUMNS, Audited, AuditEntry, Lakehouse, StagedFile

FACT_SALES = dg.AssetKey(["gold", "fact_sales"])
SILVER_SALES = dg.AssetKey(["silver", "sales"])

# The calendar covers the partitions and a forecasting horizon after them.
CALENDAR_YEARS = 3

_COMMON = {"group_name": "gold", "kinds": {"polars", "delta"}, "backfill_policy": SINGLE_RUN, "retry_policy": RETRY}


class BasketConfig(dg.Config):
    min_support: float = Field(default=basket.MIN_SUPPORT, gt=0, le=1, description="Share of multi-item orders an itemset must be in (seed 004 §4: 1%).")
    max_size: int = Field(default=basket.MAX_SIZE, ge=1, le=5, description="Largest itemset counted.")


class RulesConfig(dg.Config):
    min_confidence: float = Field(default=basket.MIN_CONFIDENCE, gt=0, le=1, description="Least share of the antecedent's orders that hold the consequent (seed 004 §4: 30%).")


class ForecastConfig(dg.Config):
    horizon_days: int = Field(default=forecast.HORIZON, ge=1, le=366, description="Days forecast after the newest sales date (seed 004 §3: 30).")


class ElasticityConfig(dg.Config):
    min_events: int = Field(default=pricing.MIN_EVENTS, ge=2, description="Price changes of more than 1% a product needs (seed 004 §5: 10).")


def _preview(frame: pl.DataFrame, rows: int = 10) -> dg.MetadataValue:
    """A few rows as a Markdown table; lists shown comma-joined, floats to 3 places."""
    shown = frame.head(rows).with_columns(pl.col(pl.List(pl.String)).list.join(", "), pl.col(pl.Float64).round(3))
    return dg.MetadataValue.md(checks.markdown(shown)) if shown.height else dg.MetadataValue.text("none")


# What the newest partition's preview shows of a fact table (ids, amounts, no customer attributes).
FACT_SALES_PREVIEW = ("order_id", "line_number", "order_date", "product_id", "store_id", "sales_channel", "quantity", "sales_total", "is_returned")
FACT_PAYMENT_PREVIEW = ("payment_id", "order_id", "payment_type", "card_brand", "card_last4", "amount", "payment_status", "is_refunded")


def _newest(frame: pl.DataFrame, day_column: str) -> pl.DataFrame:
    """The rows of the newest day in `frame`."""
    return frame.filter(pl.col(day_column) == pl.col(day_column).max())


# The whole-table analytics read the same tables, a few columns each: their inputs name the columns
# all of them read, which the I/O manager loads once per run and table version.
_ANALYTICS_READS = (
    basket.BASKET_READS, churn.CHURN_READS, forecast.FORECAST_READS, pricing.PRICING_READS, CUSTOMER_360_READS, star.CLV_READS, star.RETURNS_READS,
)
_ANALYTICS_TABLES = {"fact_sales": ("gold", "fact_sales"), "dim_product": ("gold", "dim_product"), "dim_customer": ("gold", "dim_customer"), "loyalty": ("silver", "loyalty")}


def _shared_in(table: str) -> dg.AssetIn:
    columns = sorted(set().union(*(reads[table] for reads in _ANALYTICS_READS if table in reads)))
    return dg.AssetIn(list(_ANALYTICS_TABLES[table]), metadata={SHARED_COLUMNS: columns})


def _reads(inputs: dict[str, pl.LazyFrame], reads: dict[str, tuple[str, ...]]) -> dict[str, pl.DataFrame]:
    """Each input loaded with only the columns its rule reads (a year of facts, a few columns)."""
    return {name: lf.select(reads[name]).collect() for name, lf in inputs.items()}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def window_days(context: dg.AssetExecutionContext) -> list[dt.date]:
    return days_in(*window_dates(context.partition_time_window))


def _refresh_stale_keys(
    context: dg.AssetExecutionContext, lake: Lakehouse, dim_customer: pl.DataFrame, dim_product: pl.DataFrame
) -> None:
    """Re-key the fact_sales partitions outside the run's window whose customer or product the
    dimensions now resolve differently (late-arriving members), and report each as materialized."""
    first, end = window_dates(context.partition_time_window)
    if not (lake.exists(FACT_SALES) and lake.exists(SILVER_SALES)):
        return
    outside = ~pl.col("order_date").is_between(first, end, closed="left")
    keys = ("order_id", "line_number", "customer_id", "product_id", "order_ts", "order_date")
    sales = lake.scan(SILVER_SALES).filter(outside).select(keys).collect()
    stored = lake.scan(FACT_SALES).filter(outside).select("order_id", "line_number", "order_date", "customer_key", "product_key")
    days = star.stale_days(sales, stored.collect(), dim_customer, dim_product)
    if not days:
        return
    facts = lake.scan(FACT_SALES).filter(pl.col("order_date").is_in(days)).collect()
    rekeyed = star.rekeyed_facts(sales.filter(pl.col("order_date").is_in(days)), facts, dim_customer, dim_product)
    if not rekeyed.height:
        return
    counts = dict(rekeyed.group_by("order_date").len().iter_rows())
    partitions = ", ".join(d.isoformat() for d in sorted(counts))
    with lake.failures_audited(context.run.run_id, FACT_SALES, partitions, context.log):
        version = lake.write_days(FACT_SALES, rekeyed, "order_date", counts)
    lake.audit(context.run.run_id, [AuditEntry(FACT_SALES, partitions, rekeyed.height, "SUCCESS")])
    context.log.info(f"gold/fact_sales: re-keyed {len(counts)} partition(s) outside the run for late-arriving dimension members")
    for day, rows in sorted(counts.items()):
        context.log_event(dg.AssetMaterialization(
            asset_key=FACT_SALES, partition=day.isoformat(),
            metadata={"dagster/row_count": rows, "delta_version": version, "rekeyed": True},
        ))


def _partitioned_table(name: str) -> tuple[dg.AssetKey, str]:
    """A gold table an engine may write itself: its key and its partitions' Date column."""
    return dg.AssetKey(["gold", name]), catalog.table("gold", name).partition


def _engine_read(key: list[str]) -> dg.AssetIn:
    """An input the engine reads itself (`engine.map_groups`): lineage and window, no load."""
    return dg.AssetIn(key, dagster_type=dg.Nothing)


def _daily_with_revenue(facts: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """agg_daily_sales of a group of whole days, and the facts' own revenue per day and channel
    for the reconciliation check (its referee: summed from the facts, not from the aggregate)."""
    revenue = facts.group_by("order_date", "sales_channel").agg(pl.col("sales_total").sum())
    return {"agg": star.build_agg_daily_sales(facts), "revenue": revenue}


def _sales_performance(facts: pl.DataFrame) -> dict[str, pl.DataFrame]:
    return {"report": star.build_sales_performance(facts)}


def build_gold_assets(partitions_def: dg.PartitionsDefinition, start_date: dt.date, engine_kind: str = "polars") -> list[dg.AssetsDefinition]:
    # The facts and the daily tables run their rules on the engine; the dimensions and the
    # whole-table reports read small or pruned tables in this process.
    on_engine = {**_COMMON, "kinds": {engine_kind, "delta"}}

    def partitioned() -> dict:
        # Facts and aggregates go stale after 24 h without a new partition, fail after 30 h.
        return {"partitions_def": partitions_def, "freshness_policy": freshness_policy()}

    def checked(name: str) -> dict:
        return {"key": ["gold", name], "check_specs": check_specs_for(dg.AssetKey(["gold", name])), **asset_attrs(["gold", name])}

    def publish(
        context: dg.AssetExecutionContext, name: str, frame: pl.DataFrame, *extra: checks.Verdict,
        day_column: str | None = None, metadata: dict | None = None, newest_day: dict | None = None,
        staged: tuple[StagedFile, ...] | None = None,
    ):
        """Write–audit–publish: the table's contract and its other checks are evaluated (per day
        for a partitioned table) before the write; what fails a blocking check is withheld and
        keeps its previous version. `newest_day` is metadata for the window's newest partition
        only (a preview, a chart): on every day of a year-long run it would be 365 copies. `staged`:
        the engine's files of the frame in the table's folder, committed instead of a write."""
        days = window_days(context) if day_column else None
        verdicts = [checks.contract_result(("gold", name), frame, day_column, days), *extra]
        if day_column:
            failed = frozenset().union(*(v.failed_days for v in verdicts))
            day_metadata = {days[-1]: newest_day} if newest_day else {}
            yield dg.Output(Audited(frame, failed, day_metadata=day_metadata, staged=staged), metadata=metadata)
        else:
            yield dg.Output(Audited(frame, failed=any(v.blocks for v in verdicts)), metadata=metadata)
        for verdict in verdicts:
            if verdict.blocks:
                context.log.error(f"gold/{name} {verdict.result.check_name} {verdict.result.description}")
            yield verdict.result

    @dg.asset(**checked("dim_customer"), ins={"history": dg.AssetIn(["silver", "customer_history"])}, **_COMMON)
    def dim_customer(context: dg.AssetExecutionContext, history: pl.LazyFrame):
        """Customers as SCD Type 2: one row per customer version (valid_from..valid_to), plus the unknown member −1."""
        dim = star.build_dim_customer(history.collect())
        yield from publish(context, "dim_customer", dim, checks.scd2_intervals_result(("gold", "dim_customer"), dim, "customer_id", "customer_key"))

    @dg.asset(**checked("dim_product"), ins={"history": dg.AssetIn(["silver", "product_history"])}, **_COMMON)
    def dim_product(context: dg.AssetExecutionContext, history: pl.LazyFrame):
        """Products as SCD Type 2: one row per product version (prices, names), plus the unknown member −1."""
        dim = star.build_dim_product(history.collect())
        yield from publish(context, "dim_product", dim, checks.scd2_intervals_result(("gold", "dim_product"), dim, "product_id", "product_key"))

    @dg.asset(**checked("dim_store"), ins={"stores": dg.AssetIn(["silver", "store"])}, **_COMMON)
    def dim_store(context: dg.AssetExecutionContext, stores: pl.LazyFrame):
        """Stores: one row per store_id (current attributes), plus the unknown member −1."""
        yield from publish(context, "dim_store", star.build_dim_store(stores.collect()))

    @dg.asset(**checked("dim_date"), **_COMMON)
    def dim_date(context: dg.AssetExecutionContext):
        """The calendar: one row per date from the first partition, for three years."""
        last = start_date.replace(year=start_date.year + CALENDAR_YEARS) - dt.timedelta(days=1)
        yield from publish(context, "dim_date", star.build_dim_date(start_date, last))

    @dg.asset(
        **checked("fact_sales"),
        ins={
            "sales": _engine_read(["silver", "sales"]),
            "dim_customer": dg.AssetIn(["gold", "dim_customer"]),
            "dim_product": dg.AssetIn(["gold", "dim_product"]),
        },
        **partitioned(),
        **on_engine,
    )
    def fact_sales(
        context: dg.AssetExecutionContext, dim_customer: pl.LazyFrame, dim_product: pl.LazyFrame, lake: Lakehouse, engine: Engine
    ):
        """One row per order line, keyed to the customer and product versions valid at order time."""
        customers, products, now = dim_customer.collect(), dim_product.collect(), _now()

        def rule(sales: pl.DataFrame) -> dict[str, pl.DataFrame]:
            return {"facts": star.build_fact_sales(sales, customers, products, now)}

        source = Source.for_input(context, "sales", SILVER_SALES, "order_date")
        out = engine.map_groups(lake, source, ("order_date", "order_id"), rule, tables={"facts": _partitioned_table("fact_sales")})
        facts = out["facts"]
        preview = {"preview": _preview(_newest(facts, "order_date").select(FACT_SALES_PREVIEW))}
        verdict = checks.orphans_result(facts, days=window_days(context))
        yield from publish(context, "fact_sales", facts, verdict, day_column="order_date", newest_day=preview, staged=out.staged.get("facts"))
        _refresh_stale_keys(context, lake, customers, products)

    @dg.asset(**checked("fact_payment"), ins={"payments": _engine_read(["silver", "payment"])}, **partitioned(), **on_engine)
    def fact_payment(context: dg.AssetExecutionContext, lake: Lakehouse, engine: Engine):
        """One row per payment (refunds folded in), by transaction date; card numbers only as tokens."""
        now = _now()

        def rule(payments: pl.DataFrame) -> dict[str, pl.DataFrame]:
            return {"facts": star.build_fact_payment(payments, now)}

        source = Source.for_input(context, "payments", dg.AssetKey(["silver", "payment"]), "transaction_date")
        out = engine.map_groups(lake, source, ("transaction_date", "payment_id"), rule, tables={"facts": _partitioned_table("fact_payment")})
        facts = out["facts"]
        verdict = checks.refunds_within_payments_result(facts, days=window_days(context))
        preview = {"preview": _preview(_newest(facts, "transaction_date").select(FACT_PAYMENT_PREVIEW))}
        yield from publish(
            context, "fact_payment", facts, verdict, day_column="transaction_date", newest_day=preview, staged=out.staged.get("facts")
        )

    @dg.asset(**checked("agg_daily_sales"), ins={"facts": _engine_read(["gold", "fact_sales"])}, **partitioned(), **on_engine)
    def agg_daily_sales(context: dg.AssetExecutionContext, lake: Lakehouse, engine: Engine):
        """One row per sales date and channel: revenue, quantity, orders, lines, customers, returns, AOV."""
        source = Source.for_input(context, "facts", FACT_SALES, "order_date")
        out = engine.map_groups(lake, source, ("order_date",), _daily_with_revenue, tables={"agg": _partitioned_table("agg_daily_sales")})
        verdict = checks.revenue_reconciles_result(out["revenue"], out["agg"], days=window_days(context))
        chart = {
            "revenue_per_day_and_channel": dg.MetadataValue.md(charts.revenue_bars(out["agg"])),
            "revenue_chart_vega_lite": dg.MetadataValue.json(charts.revenue_vega(out["agg"])),
        }
        yield from publish(context, "agg_daily_sales", out["agg"], verdict, day_column="sales_date", newest_day=chart, staged=out.staged.get("agg"))

    @dg.asset(**checked("sales_performance"), ins={"facts": _engine_read(["gold", "fact_sales"])}, **partitioned(), **on_engine)
    def sales_performance(context: dg.AssetExecutionContext, lake: Lakehouse, engine: Engine):
        """Seed 000 §9.1: per day and channel, orders, revenue, average line value, returns and return rate."""
        source = Source.for_input(context, "facts", FACT_SALES, "order_date")
        out = engine.map_groups(lake, source, ("order_date",), _sales_performance, tables={"report": _partitioned_table("sales_performance")})
        yield from publish(context, "sales_performance", out["report"], day_column="sales_date", staged=out.staged.get("report"))

    @dg.asset(
        **checked("customer_lifetime_value"),
        ins={"facts": _shared_in("fact_sales"), "dim_customer": _shared_in("dim_customer")},
        **_COMMON,
    )
    def customer_lifetime_value(context: dg.AssetExecutionContext, facts: pl.LazyFrame, dim_customer: pl.LazyFrame):
        """Seed 000 §9.2: one row per customer with sales: orders, lifetime value, recency, AOV."""
        reads = star.CLV_READS
        frame = star.build_customer_lifetime_value(facts.select(reads["fact_sales"]).collect(), dim_customer.select(reads["dim_customer"]).collect())
        yield from publish(context, "customer_lifetime_value", frame)

    @dg.asset(
        **checked("product_return_analysis"),
        ins={"facts": _shared_in("fact_sales"), "dim_product": _shared_in("dim_product")},
        **_COMMON,
    )
    def product_return_analysis(context: dg.AssetExecutionContext, facts: pl.LazyFrame, dim_product: pl.LazyFrame):
        """Seed 000 §9.3: one row per product with sales: units sold and returned, refunds, rates."""
        reads = star.RETURNS_READS
        frame = star.build_product_return_analysis(facts.select(reads["fact_sales"]).collect(), dim_product.select(reads["dim_product"]).collect())
        yield from publish(context, "product_return_analysis", frame)

    @dg.asset(
        **checked("customer_360"),
        ins={
            "dim_customer": _shared_in("dim_customer"),
            "facts": _shared_in("fact_sales"),
            "dim_product": _shared_in("dim_product"),
            "loyalty": _shared_in("loyalty"),
        },
        **_COMMON,
    )
    def customer_360(context: dg.AssetExecutionContext, dim_customer: pl.LazyFrame, facts: pl.LazyFrame, dim_product: pl.LazyFrame, loyalty: pl.LazyFrame):
        """Seed 004 §2: one row per current customer: orders, channels, categories, loyalty points, RFM segment."""
        inputs = {"dim_customer": dim_customer, "fact_sales": facts, "dim_product": dim_product, "loyalty": loyalty}
        frame = build_customer_360(**_reads(inputs, CUSTOMER_360_READS))
        yield from publish(context, "customer_360", frame)

    facts_and_products = {"facts": _shared_in("fact_sales"), "dim_product": _shared_in("dim_product")}

    @dg.asset(**checked("frequent_itemsets"), ins=facts_and_products, **_COMMON)
    def frequent_itemsets(context: dg.AssetExecutionContext, config: BasketConfig, facts: pl.LazyFrame, dim_product: pl.LazyFrame):
        """Seed 004 §4: products (and categories) bought together in multi-item orders, with support."""
        inputs = _reads({"fact_sales": facts, "dim_product": dim_product}, basket.BASKET_READS)
        frame = basket.frequent_itemsets(basket.baskets(**inputs), config.min_support, config.max_size)
        metadata = {
            "min_support": config.min_support,
            **{f"baskets_{level}": int(frame.filter(pl.col("level") == level)["baskets"].max() or 0) for level in basket.LEVELS},
            "top_pairs": _preview(frame.filter(pl.col("size") >= 2).sort("support", descending=True)),
        }
        yield from publish(context, "frequent_itemsets", frame, metadata=metadata)

    @dg.asset(**checked("association_rules"), ins={"itemsets": dg.AssetIn(["gold", "frequent_itemsets"])}, **_COMMON)
    def association_rules(context: dg.AssetExecutionContext, config: RulesConfig, itemsets: pl.LazyFrame):
        """Seed 004 §4: antecedent → consequent rules with confidence and lift, from the frequent itemsets."""
        frame = basket.association_rules(itemsets.collect(), config.min_confidence)
        metadata = {
            "min_confidence": config.min_confidence,
            **{f"top_rules_{level}": _preview(frame.filter(pl.col("level") == level).drop("level")) for level in basket.LEVELS},
        }
        yield from publish(context, "association_rules", frame, metadata=metadata)

    @dg.asset(**checked("demand_forecast"), ins=facts_and_products, **_COMMON)
    def demand_forecast(context: dg.AssetExecutionContext, config: ForecastConfig, facts: pl.LazyFrame, dim_product: pl.LazyFrame):
        """Seed 004 §3: units per day for the next 30 days per product and store (and category and store),
        with its accuracy on held-out weeks against the seasonal-naive forecast."""
        result = forecast.build_demand_forecast(**_reads({"fact_sales": facts, "dim_product": dim_product}, forecast.FORECAST_READS), horizon=config.horizon_days)
        accuracy = {
            f"{metric}_{row['level']}": row[metric]
            for row in result.accuracy.iter_rows(named=True) for metric in ("mase_model", "mase_seasonal_naive") if row[metric] is not None
        }
        metadata = {**accuracy, "forecast_vs_actual": _preview(result.preview, rows=forecast.HORIZON)}
        if result.table.is_empty():
            context.log.info(f"gold/demand_forecast: fewer than {forecast.MIN_HISTORY} days of sales, nothing forecast")
        yield from publish(context, "demand_forecast", result.table, checks.beats_seasonal_naive_result(result.accuracy), metadata=metadata)

    @dg.asset(**checked("price_elasticity"), ins=facts_and_products, **_COMMON)
    def price_elasticity(context: dg.AssetExecutionContext, config: ElasticityConfig, facts: pl.LazyFrame, dim_product: pl.LazyFrame):
        """Seed 004 §5: price elasticity per product from its price changes, and the recommended price."""
        inputs = _reads({"fact_sales": facts, "dim_product": dim_product}, pricing.PRICING_READS)
        frame = pricing.build_price_elasticity(**inputs, min_events=config.min_events)
        metadata = {
            "min_events": config.min_events,
            "actions": ", ".join(f"{a} {n}" for a, n in frame.group_by("price_action").len().sort("price_action").iter_rows()) or "none",
            "preview": _preview(frame.select("product_id", "price_change_events", "price_elasticity", "elasticity_stderr", "current_price", "recommended_price", "price_action")),
        }
        yield from publish(context, "price_elasticity", frame, metadata=metadata)

    @dg.asset(
        **checked("customer_churn_risk"),
        ins={"facts": _shared_in("fact_sales"), "dim_customer": _shared_in("dim_customer")},
        **_COMMON,
    )
    def customer_churn_risk(context: dg.AssetExecutionContext, facts: pl.LazyFrame, dim_customer: pl.LazyFrame):
        """Seed 000 phase 6: a churn score and tier per current customer, evaluated on the last 30 days."""
        inputs = _reads({"fact_sales": facts, "dim_customer": dim_customer}, churn.CHURN_READS)
        frame = churn.build_customer_churn_risk(**inputs)
        held_out = churn.evaluate(**inputs)
        metadata = {
            "tiers": ", ".join(f"{t} {n}" for t, n in frame.group_by("risk_tier").len().sort("risk_tier").iter_rows()) or "none",
            **({
                "holdout_scored_as_of": held_out["scored_as_of"].isoformat(),
                "holdout_auc": held_out["auc"],
                "holdout_tiers": _preview(held_out["tiers"]),
            } if held_out and held_out["auc"] is not None else {"holdout": "under 60 days of sales: not evaluated"}),
        }
        yield from publish(context, "customer_churn_risk", frame, metadata=metadata)

    return [
        customer_360, frequent_itemsets, association_rules, demand_forecast, price_elasticity, customer_churn_risk,
        dim_customer, dim_product, dim_store, dim_date, fact_sales, fact_payment,
        agg_daily_sales, sales_performance, customer_lifetime_value, product_return_analysis,
    ]
