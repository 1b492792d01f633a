"""(f) The seeds' PySpark: seed 000 §2.2's bronze → silver cleaning and §1.3's fact and aggregate,
on `local[2]`, over the same CSV drops, the same subset as the DuckDB peer, Parquet out.

    .venv/bin/python -m bench.peers_pyspark --landing DIR --out DIR --first 2025-06-01 --last 2026-05-31

The seed's code, made to follow SPEC §4 where the seed differs (so that its output can be compared):
- customer (§2.2): `dropna(customer_id, email)` after trimming; email `lower(trim())` and required
  to look like an email; `initcap(trim(name))`; phone `[^0-9+]` removed (a "+" only leading);
  postal code upper-cased and `[^0-9A-Z-]` removed; `to_timestamp(created_at, 'yyyy-MM-dd HH:mm:ss')`
  kept, not overwritten by `current_timestamp()` (§1.3's variant); data_quality_score = the share of
  the age_group, gender, phone, postal checks that pass (the seed's `when` chain scores 0/1); the
  seed's `dropDuplicates(['email'])` becomes SPEC's rule: the earlier-created customer keeps an
  email, and one row per customer_id, its latest valid version;
- sales: SPEC's rules, as the DuckDB peer and `retail_lakehouse.silver.rules` state them;
  sales_total half-even to cents (`bround`), kept from silver rather than recomputed in the fact;
- fact_sales (§1.3): `row_number().over(Window.orderBy('order_date'))` as sales_id, the seed's left
  join to the customer ids (the product join is left out: product is not in the subset), written
  partitioned by order_date and read back, as the seed reads `gold.fact_sales`;
- agg_daily_sales (§1.3's SQL): total_orders = COUNT(DISTINCT order_id) (the seed counts sales_id),
  total_lines added, avg_order_value = total_revenue / total_orders (the seed averages sales_total),
  partitioned by sales_date.
Delta is not available here (no Maven access for the delta-spark jars): silver and gold are Parquet.
A drop is loaded whole or not at all (`bench.common.vet`, then Spark's FAILFAST reader).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
from pathlib import Path

from bench.common import AGE_GROUPS, CHANNELS, EMAIL, GENDERS, LATE_DATA_DAYS, PLAIN_DECIMAL, SALES, loadable
from retail_lakehouse.sources import SOURCE_COLUMNS

AGG_SQL = """
SELECT
    DATE(order_date) as sales_date,
    sales_channel,
    CAST(SUM(sales_total) AS DECIMAL(18, 2)) as total_revenue,
    CAST(SUM(quantity) AS BIGINT) as total_quantity,
    COUNT(DISTINCT order_id) as total_orders,
    COUNT(*) as total_lines,
    COUNT(DISTINCT customer_id) as unique_customers,
    CAST(SUM(CASE WHEN is_returned THEN 1 ELSE 0 END) AS BIGINT) as return_count,
    CAST(bround(SUM(sales_total) / COUNT(DISTINCT order_id), 2) AS DECIMAL(18, 2)) as avg_order_value
FROM fact_sales
GROUP BY DATE(order_date), sales_channel
"""


def _session(driver_memory: str, shuffle_partitions: int | None):
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master("local[2]")
        .appName("retail_lakehouse-bench")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.driver.memory", driver_memory)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
    )
    if shuffle_partitions:
        builder = builder.config("spark.sql.shuffle.partitions", str(shuffle_partitions))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def run(landing: Path, out: Path, first: dt.date, last: dt.date, driver_memory: str = "2g",
        shuffle_partitions: int | None = None) -> dict[str, int]:
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    spark = _session(driver_memory, shuffle_partitions)

    def t(c):
        """Trimmed text, empty = null."""
        v = F.trim(F.col(c), F.lit(" \t\r\n"))
        return F.when(v != "", v)

    def ts(c):
        return F.try_to_timestamp(t(c), F.lit("yyyy-MM-dd HH:mm:ss"))

    def as_date(c):
        return F.try_to_date(t(c), "yyyy-MM-dd")

    def as_int(c):
        return F.when(t(c).rlike(r"^[+-]?[0-9]+$"), t(c).try_cast("int"))

    def money(c):
        return F.when(t(c).rlike(f"^{PLAIN_DECIMAL}$"), F.bround(t(c).try_cast("decimal(38,6)"), 2).cast("decimal(18,2)"))

    def flag(c):
        v = F.lower(t(c))
        return F.when(v.isin("1", "true", "y", "yes"), F.lit(True)).when(v.isin("0", "false", "n", "no"), F.lit(False))

    def unparsed(raw, parsed):
        return t(raw).isNotNull() & F.col(parsed).isNull()

    def read(source: str):
        good, bad = loadable(landing, source, first, last)
        schema = StructType([StructField(c, StringType()) for c in SOURCE_COLUMNS[source]])
        frame = spark.read.csv(
            [str(d.path) for d in good], schema=schema, header=True, multiLine=True, escape='"', mode="FAILFAST"
        )
        name = F.regexp_extract(F.col("_metadata.file_path"), r"([^/]+)$", 1)
        return frame.select(
            "*",
            F.concat(F.lit(f"{source}/"), name).alias("_source_file"),
            F.to_date(F.regexp_extract(name, r"_([0-9]{8})_[0-9]{6}\.csv$", 1), "yyyyMMdd").alias("drop_date"),
            # A multi-line CSV is never split, so this increases along each file's rows.
            F.monotonically_increasing_id().alias("_row"),
        ), len(bad)

    def flagged(frame, rules):
        flags = [F.coalesce(cond, F.lit(False)).alias(f"r{i}") for i, (_, cond) in enumerate(rules)]
        broken = F.lit(False)
        for i in range(len(rules)):
            broken = broken | F.col(f"r{i}")
        return frame.select("*", *flags).withColumn("_broken", broken)

    def reasons(rules):
        return F.array_compact(F.array(*[F.when(F.col(f"r{i}"), F.lit(n)) for i, (n, _) in enumerate(rules)]))

    latest_first = [F.col("drop_date").desc(), F.col("_source_file").desc(), F.col("_row").desc()]
    counts: dict[str, int] = {}

    # --- Bronze → Silver: customer (seed 000 §2.2) ---------------------------------------------
    bronze_customer, rejected = read("customer")
    counts["rejected_files"] = rejected
    phone = F.regexp_replace(F.regexp_replace(F.trim(F.col("phone")), r"[^0-9+]", ""), r"(.)\+", "$1")
    postal = F.regexp_replace(F.upper(F.col("postal_code")), r"[^0-9A-Z-]", "")
    age, gender = t("age_group"), t("gender")
    c = bronze_customer.select(
        "*",
        t("customer_id").alias("c_customer_id"),
        F.initcap(F.regexp_replace(t("name"), r"\s+", " ")).alias("c_name"),
        F.lower(t("email")).alias("c_email"),
        F.when(phone != "", phone).alias("c_phone"),
        F.when(gender.isin(*GENDERS), gender).alias("c_gender"),
        F.when(age.isin(*AGE_GROUPS), age).alias("c_age_group"),
        t("city").alias("c_city"), t("state").alias("c_state"),
        F.when(postal != "", postal).alias("c_postal_code"),
        t("country").alias("c_country"), t("customer_segment").alias("c_customer_segment"),
        ts("created_at").alias("c_created_at"), ts("updated_at").alias("c_updated_at"),
        ((F.coalesce(age.isin(*AGE_GROUPS), F.lit(False)).cast("double")
          + F.coalesce(gender.isin(*GENDERS), F.lit(False)).cast("double")
          + F.coalesce(F.length(F.regexp_replace(phone, r"[^0-9]", "")).between(7, 15), F.lit(False)).cast("double")
          + F.coalesce(F.length(postal).between(3, 10), F.lit(False)).cast("double")) / 4.0).alias("c_data_quality_score"),
    )
    customer_rules = [
        ("required_customer_id", F.col("c_customer_id").isNull()),
        ("required_email", F.col("c_email").isNull()),
        ("invalid_email", F.col("c_email").isNotNull() & ~F.col("c_email").rlike(f"^{EMAIL}$")),
        ("required_created_at", t("created_at").isNull()),
        ("invalid_created_at", unparsed("created_at", "c_created_at")),
        ("required_updated_at", t("updated_at").isNull()),
        ("invalid_updated_at", unparsed("updated_at", "c_updated_at")),
    ]
    typed = ("customer_id", "name", "email", "phone", "gender", "age_group", "city", "state", "postal_code",
             "country", "customer_segment", "created_at", "updated_at", "data_quality_score")
    c = flagged(c, customer_rules).persist()
    valid = c.filter(~F.col("_broken")).select(*[F.col(f"c_{n}").alias(n) for n in typed], "drop_date", "_source_file", "_row")
    owner = (
        valid.groupBy("email", "customer_id").agg(F.min("created_at").alias("first_created"))
        .withColumn("_n", F.row_number().over(Window.partitionBy("email").orderBy(F.col("first_created").asc_nulls_last(), "customer_id")))
        .filter("_n = 1").select("email", F.col("customer_id").alias("_owner"))
    )
    owned = valid.join(owner, "email").withColumn("_dup", F.col("customer_id") != F.col("_owner"))
    silver_customer = (
        owned.filter(~F.col("_dup"))
        .withColumn("_n", F.row_number().over(Window.partitionBy("customer_id").orderBy(*latest_first)))
        .filter("_n = 1").drop("_n", "_owner", "_dup", "_row")
    )
    silver_customer.write.mode("overwrite").parquet(str(out / "silver" / "customer"))
    src = SOURCE_COLUMNS["customer"]
    dups = owned.filter(F.col("_dup")).select("_source_file", "_row").join(c, ["_source_file", "_row"])
    quarantine = c.filter("_broken").select(*src, reasons(customer_rules).alias("reject_reasons"), "_source_file", "_row", "drop_date").unionByName(
        dups.select(*src, F.array(F.lit("duplicate_email")).alias("reject_reasons"), "_source_file", "_row", "drop_date")
    )
    quarantine.write.mode("overwrite").parquet(str(out / "silver" / "customer_quarantine"))
    c.unpersist()

    # --- Bronze → Silver: sales (SPEC §4) -------------------------------------------------------
    bronze_sales, rejected = read(SALES)
    counts["rejected_files"] += rejected
    channel = F.lower(t("sales_channel"))
    channel_expr = F.lit(None).cast("string")
    for k, v in CHANNELS.items():
        channel_expr = F.when(channel == k, F.lit(v)).otherwise(channel_expr)
    s = bronze_sales.select(
        "*",
        t("order_id").alias("c_order_id"), as_int("line_number").alias("c_line_number"),
        t("customer_id").alias("c_customer_id"), t("product_id").alias("c_product_id"), t("store_id").alias("c_store_id"),
        ts("order_ts").alias("c_order_ts"), F.to_date(ts("order_ts")).alias("c_order_date"),
        as_date("delivery_date").alias("c_delivery_date"), as_int("quantity").alias("c_quantity"),
        money("unit_price").alias("c_unit_price"),
        F.when(t("discount_amount").isNull(), F.lit(0).cast("decimal(18,2)")).otherwise(money("discount_amount")).alias("c_discount_amount"),
        F.when(t("tax_amount").isNull(), F.lit(0).cast("decimal(18,2)")).otherwise(money("tax_amount")).alias("c_tax_amount"),
        channel_expr.alias("c_sales_channel"), t("order_status").alias("c_order_status"), flag("is_returned").alias("c_is_returned"),
    )
    ret = F.coalesce(F.col("c_is_returned"), F.lit(False))
    s = s.select(
        "*",
        F.bround(F.col("c_quantity").cast("decimal(10,0)") * F.col("c_unit_price")
                 - F.coalesce(F.col("c_discount_amount"), F.lit(0)) + F.coalesce(F.col("c_tax_amount"), F.lit(0)), 2)
        .cast("decimal(18,2)").alias("c_sales_total"),
        F.when(ret, as_date("return_date")).alias("c_return_date"),
        F.when(ret, t("return_reason")).alias("c_return_reason"),
        F.when(ret, as_int("return_quantity")).alias("c_return_quantity"),
        F.when(ret, money("return_amount")).alias("c_return_amount"),
    )
    col = F.col
    sales_rules = [
        *[(f"required_{k}", col(f"c_{k}").isNull() & t(k).isNull()) for k in ("order_id", "line_number", "customer_id", "product_id")],
        ("invalid_line_number", unparsed("line_number", "c_line_number")),
        ("required_order_ts", t("order_ts").isNull()),
        ("invalid_order_ts", unparsed("order_ts", "c_order_ts")),
        ("required_quantity", t("quantity").isNull()),
        ("invalid_quantity", unparsed("quantity", "c_quantity")),
        ("non_positive_quantity", col("c_quantity") <= 0),
        ("required_unit_price", t("unit_price").isNull()),
        ("invalid_unit_price", unparsed("unit_price", "c_unit_price")),
        ("negative_unit_price", col("c_unit_price") < 0),
        ("invalid_discount_amount", col("c_discount_amount").isNull()),
        ("negative_discount_amount", col("c_discount_amount") < 0),
        ("invalid_tax_amount", col("c_tax_amount").isNull()),
        ("negative_tax_amount", col("c_tax_amount") < 0),
        ("invalid_sales_channel", col("c_sales_channel").isNull()),
        ("invalid_is_returned", col("c_is_returned").isNull()),
        ("invalid_delivery_date", unparsed("delivery_date", "c_delivery_date")),
        ("return_before_order", ret & (col("c_return_date").isNull() | (col("c_return_date") < col("c_order_date")))),
        ("invalid_return_quantity", ret & (~F.coalesce(col("c_return_quantity") > 0, F.lit(False)) | (col("c_return_quantity") > col("c_quantity")))),
        ("invalid_return_amount", ret & (col("c_return_amount").isNull() | (col("c_return_amount") < 0) | (col("c_return_amount") > col("c_sales_total")))),
        ("order_after_drop_date", col("c_order_date") > col("drop_date")),
        ("order_outside_late_window", col("c_order_date") < F.date_sub(col("drop_date"), LATE_DATA_DAYS)),
        ("order_before_first_partition", col("c_order_date") < F.lit(first)),
    ]
    sales_typed = ("order_id", "line_number", "customer_id", "product_id", "store_id", "order_ts", "order_date",
                   "delivery_date", "quantity", "unit_price", "discount_amount", "tax_amount", "sales_total",
                   "sales_channel", "order_status", "is_returned", "return_date", "return_reason",
                   "return_quantity", "return_amount")
    s = flagged(s, sales_rules).persist()
    (
        s.filter(~F.col("_broken"))
        .select(*[F.col(f"c_{n}").alias(n) for n in sales_typed], "drop_date", "_source_file", "_row")
        .withColumn("_n", F.row_number().over(Window.partitionBy("order_id", "line_number").orderBy(*latest_first)))
        .filter("_n = 1").drop("_n", "_row")
        .write.mode("overwrite").parquet(str(out / "silver" / "sales"))
    )
    (
        s.filter("_broken")
        .select(*SOURCE_COLUMNS[SALES], reasons(sales_rules).alias("reject_reasons"), "_source_file", "_row", "drop_date")
        .write.mode("overwrite").parquet(str(out / "silver" / "sales_quarantine"))
    )
    s.unpersist()

    # --- Silver → Gold (seed 000 §1.3) -------------------------------------------------------------
    customer_silver = spark.read.parquet(str(out / "silver" / "customer"))
    sales_silver = spark.read.parquet(str(out / "silver" / "sales"))
    fact_sales = (
        sales_silver
        .join(customer_silver.select("customer_id"), "customer_id", "left")
        .withColumn("sales_id", F.row_number().over(Window.orderBy("order_date")))
        .select("sales_id", "order_id", "line_number", "customer_id", "product_id", "order_date", "delivery_date",
                "quantity", "unit_price", "discount_amount", "tax_amount",
                "sales_total", "sales_channel", "order_status", "is_returned",
                "return_date", "return_reason", "return_quantity", "return_amount",
                F.current_timestamp().alias("load_timestamp"))
    )
    fact_sales.write.mode("overwrite").partitionBy("order_date").parquet(str(out / "gold" / "fact_sales"))
    spark.read.parquet(str(out / "gold" / "fact_sales")).createOrReplaceTempView("fact_sales")
    agg = spark.sql(AGG_SQL)
    agg.write.mode("overwrite").partitionBy("sales_date").parquet(str(out / "gold" / "agg_daily_sales"))
    counts["silver_sales"] = sales_silver.count()
    counts["agg_daily_sales"] = spark.read.parquet(str(out / "gold" / "agg_daily_sales")).count()
    spark.stop()
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peers_pyspark", description=__doc__.splitlines()[0])
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--first", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--last", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--driver-memory", default=os.environ.get("BENCH_SPARK_DRIVER_MEMORY", "2g"))
    parser.add_argument("--shuffle-partitions", type=int, default=None, help="default: Spark's (200, coalesced by AQE)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    counts = run(args.landing, args.out, args.first, args.last, args.driver_memory, args.shuffle_partitions)
    print(f"pyspark: {counts} in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
