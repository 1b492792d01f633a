"""(e) DuckDB SQL peer: the seeds' subset (customer and sales silver, fact_sales, agg_daily_sales)
under SPEC §4's rules, reading the same CSV drops, writing Parquet.

    .venv/bin/python -m bench.peers_duckdb --landing DIR --out DIR --first 2025-06-01 --last 2026-05-31

Rules (SPEC §4, seed 000 §2.2 as SPEC states them), the same as `retail_lakehouse.silver.rules`:
- a drop is loaded whole or not at all (`bench.common.vet`: header, UTF-8, final line break; DuckDB's
  strict reader rejects a record with the wrong field count);
- text is trimmed, empty = null; money parses as a plain decimal into DECIMAL(18,2), half-even;
- customer: customer_id, email, created_at, updated_at required; email lower-cased, trimmed and
  valid; name trimmed, spaces collapsed, title-cased per word; phone digits and a leading "+";
  postal code upper-cased, [0-9A-Z-]; invalid age_group/gender set to null; data_quality_score;
  an email held by two customer_ids stays with the earlier-created one (the other's versions are
  quarantined as duplicate_email); the latest valid version per customer_id;
- sales: every rule of silver/sales (required keys, quantity > 0, prices ≥ 0, empty discount or tax
  = 0, channel normalized, return rules, the 30-day late window of the drop and the first
  partition); sales_total = quantity × unit_price − discount + tax, half-even to cents; the latest
  valid version per (order_id, line_number), in delivery order (drop date, file, row);
- fact_sales as seed 000 §1.3's SQL (row_number() sales_id), plus order_id and line_number;
- agg_daily_sales as seed 000 §1.3's SQL with SPEC's columns: total_orders = distinct order_id (the
  seed counts sales_id), total_lines, avg_order_value = revenue / orders half-even (the seed
  averages sales_total).
Rejected rows go to `<table>_quarantine` with `reject_reasons`. Fact and aggregate are written
hive-partitioned by date, as the seed partitions them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

from bench.common import AGE_GROUPS, CHANNELS, EMAIL, GENDERS, LATE_DATA_DAYS, PLAIN_DECIMAL, SALES, loadable
from retail_lakehouse.sources import SOURCE_COLUMNS


def _list(values) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


MACROS = f"""
CREATE MACRO t(x) AS nullif(trim(x, E' \\t\\r\\n'), '');
CREATE MACRO ts(x) AS try_strptime(t(x), '%Y-%m-%d %H:%M:%S');
CREATE MACRO as_date(x) AS CAST(try_strptime(t(x), '%Y-%m-%d') AS DATE);
CREATE MACRO as_int(x) AS CASE WHEN regexp_full_match(t(x), '[+-]?[0-9]+') THEN TRY_CAST(t(x) AS INTEGER) END;
CREATE MACRO money(x) AS CASE WHEN regexp_full_match(t(x), '{PLAIN_DECIMAL}')
    THEN CAST(round_even(TRY_CAST(t(x) AS DECIMAL(38, 6)), 2) AS DECIMAL(18, 2)) END;
CREATE MACRO flag(x) AS CASE WHEN lower(t(x)) IN ('1', 'true', 'y', 'yes') THEN true
    WHEN lower(t(x)) IN ('0', 'false', 'n', 'no') THEN false END;
CREATE MACRO unparsed(raw, parsed) AS t(raw) IS NOT NULL AND parsed IS NULL;
"""


def _load(con, table: str, source: str, files: list[Path]) -> None:
    columns = SOURCE_COLUMNS[source]
    spec = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in columns) + "}"
    paths = "[" + _list([str(p) for p in files]) + "]"
    if not files:
        con.execute(f"CREATE TABLE {table} AS SELECT {', '.join(f'NULL::VARCHAR AS {c}' for c in columns)}, "
                    "NULL::VARCHAR AS _source_file, NULL::DATE AS drop_date, 0::BIGINT AS _rid LIMIT 0")
        return
    # One scan of every drop; insertion order is file order, so rowid orders the rows of a file.
    con.execute(f"""
        CREATE TABLE {table}_raw AS SELECT * FROM read_csv({paths}, header = true, columns = {spec},
            auto_detect = false, delim = ',', quote = '"', escape = '"', strict_mode = true,
            null_padding = false, filename = true)""")
    con.execute(f"""
        CREATE TABLE {table} AS SELECT {', '.join(columns)},
            '{source}/' || regexp_extract(filename, '[^/]+$') AS _source_file,
            CAST(strptime(regexp_extract(filename, '_([0-9]{{8}})_[0-9]{{6}}\\.csv$', 1), '%Y%m%d') AS DATE) AS drop_date,
            rowid AS _rid
        FROM {table}_raw""")
    con.execute(f"DROP TABLE {table}_raw")


def _reasons(rules: list[tuple[str, str]]) -> str:
    cases = ", ".join(f"CASE WHEN {flag} THEN '{name}' END" for name, flag in rules)
    return f"list_filter([{cases}], lambda r: r IS NOT NULL)"


def _flags(rules: list[tuple[str, str]]) -> str:
    return ",\n".join(f"coalesce({cond}, false) AS r{i}" for i, (_, cond) in enumerate(rules))


def _any(rules) -> str:
    return " OR ".join(f"r{i}" for i in range(len(rules))) or "false"


def clean_customers(con) -> None:
    src = SOURCE_COLUMNS["customer"]
    phone = r"regexp_replace(regexp_replace(trim(phone), '[^0-9+]', '', 'g'), '(.)\+', '\1', 'g')"
    postal = "regexp_replace(upper(postal_code), '[^0-9A-Z-]', '', 'g')"
    name = ("array_to_string(list_transform(string_split(lower(regexp_replace(t(name), '\\s+', ' ', 'g')), ' '), "
            "lambda w: upper(w[1]) || w[2:]), ' ')")
    con.execute(f"""
        CREATE TABLE customer_typed AS SELECT *,
            t(customer_id) AS c_customer_id, {name} AS c_name, lower(t(email)) AS c_email,
            nullif({phone}, '') AS c_phone,
            CASE WHEN t(gender) IN ({_list(GENDERS)}) THEN t(gender) END AS c_gender,
            CASE WHEN t(age_group) IN ({_list(AGE_GROUPS)}) THEN t(age_group) END AS c_age_group,
            t(city) AS c_city, t(state) AS c_state, nullif({postal}, '') AS c_postal_code, t(country) AS c_country,
            t(customer_segment) AS c_customer_segment, ts(created_at) AS c_created_at, ts(updated_at) AS c_updated_at,
            (CAST(coalesce(t(age_group) IN ({_list(AGE_GROUPS)}), false) AS DOUBLE)
             + CAST(coalesce(t(gender) IN ({_list(GENDERS)}), false) AS DOUBLE)
             + CAST(coalesce(length(regexp_replace({phone}, '[^0-9]', '', 'g')) BETWEEN 7 AND 15, false) AS DOUBLE)
             + CAST(coalesce(length({postal}) BETWEEN 3 AND 10, false) AS DOUBLE)) / 4.0 AS c_data_quality_score
        FROM customer_bronze""")
    rules = [
        ("required_customer_id", "c_customer_id IS NULL"),
        ("required_email", "c_email IS NULL"),
        ("invalid_email", f"c_email IS NOT NULL AND NOT regexp_full_match(c_email, '{EMAIL}')"),
        ("required_created_at", "t(created_at) IS NULL"),
        ("invalid_created_at", "unparsed(created_at, c_created_at)"),
        ("required_updated_at", "t(updated_at) IS NULL"),
        ("invalid_updated_at", "unparsed(updated_at, c_updated_at)"),
    ]
    typed = [c for c in ("customer_id", "name", "email", "phone", "gender", "age_group", "city", "state",
                         "postal_code", "country", "customer_segment", "created_at", "updated_at", "data_quality_score")]
    con.execute(f"CREATE TABLE customer_flagged AS SELECT *, {_flags(rules)} FROM customer_typed")
    con.execute(f"""
        CREATE TABLE customer_valid AS SELECT {', '.join(f'c_{c} AS {c}' for c in typed)}, drop_date, _source_file, _rid
        FROM customer_flagged WHERE NOT ({_any(rules)})""")
    # duplicate_email: the earlier-created customer keeps the email (decided over every valid version).
    con.execute("""
        CREATE TABLE customer_owner AS
        SELECT email, customer_id AS owner FROM (
            SELECT email, customer_id, min(created_at) AS first_created FROM customer_valid GROUP BY ALL)
        QUALIFY row_number() OVER (PARTITION BY email ORDER BY first_created NULLS LAST, customer_id) = 1""")
    con.execute("""
        CREATE TABLE customer_history AS SELECT v.* FROM customer_valid v JOIN customer_owner o USING (email)
        WHERE v.customer_id = o.owner""")
    con.execute("""
        CREATE TABLE silver_customer AS SELECT * EXCLUDE (_rid) FROM customer_history
        QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY drop_date DESC, _source_file DESC, _rid DESC) = 1""")
    con.execute(f"""
        CREATE TABLE customer_quarantine AS
        SELECT {', '.join(src)}, {_reasons([(n, f'r{i}') for i, (n, _) in enumerate(rules)])} AS reject_reasons,
               _source_file, _rid AS _row, drop_date
        FROM customer_flagged WHERE {_any(rules)}
        UNION ALL
        SELECT {', '.join(f'b.{c}' for c in src)}, ['duplicate_email'], b._source_file, b._rid, b.drop_date
        FROM customer_valid v JOIN customer_owner o USING (email) JOIN customer_bronze b USING (_rid)
        WHERE v.customer_id <> o.owner""")


def clean_sales(con, first: dt.date) -> None:
    src = SOURCE_COLUMNS[SALES]
    channel = "CASE lower(t(sales_channel)) " + " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in CHANNELS.items()) + " END"
    con.execute(f"""
        CREATE TABLE sales_typed AS SELECT *,
            t(order_id) AS c_order_id, as_int(line_number) AS c_line_number, t(customer_id) AS c_customer_id,
            t(product_id) AS c_product_id, t(store_id) AS c_store_id, ts(order_ts) AS c_order_ts,
            CAST(ts(order_ts) AS DATE) AS c_order_date, as_date(delivery_date) AS c_delivery_date,
            as_int(quantity) AS c_quantity, money(unit_price) AS c_unit_price,
            CASE WHEN t(discount_amount) IS NULL THEN CAST(0 AS DECIMAL(18, 2)) ELSE money(discount_amount) END AS c_discount_amount,
            CASE WHEN t(tax_amount) IS NULL THEN CAST(0 AS DECIMAL(18, 2)) ELSE money(tax_amount) END AS c_tax_amount,
            {channel} AS c_sales_channel, t(order_status) AS c_order_status, flag(is_returned) AS c_is_returned
        FROM sales_bronze""")
    con.execute("""
        CREATE TABLE sales_typed2 AS SELECT *,
            CAST(round_even(CAST(c_quantity AS DECIMAL(38, 2)) * c_unit_price
                 - coalesce(c_discount_amount, 0) + coalesce(c_tax_amount, 0), 2) AS DECIMAL(18, 2)) AS c_sales_total,
            CASE WHEN c_is_returned THEN as_date(return_date) END AS c_return_date,
            CASE WHEN c_is_returned THEN t(return_reason) END AS c_return_reason,
            CASE WHEN c_is_returned THEN as_int(return_quantity) END AS c_return_quantity,
            CASE WHEN c_is_returned THEN money(return_amount) END AS c_return_amount,
            coalesce(c_is_returned, false) AS ret
        FROM sales_typed""")
    con.execute("DROP TABLE sales_typed")
    rules = [
        *[(f"required_{c}", f"c_{c} IS NULL AND t({c}) IS NULL") for c in ("order_id", "line_number", "customer_id", "product_id")],
        ("invalid_line_number", "unparsed(line_number, c_line_number)"),
        ("required_order_ts", "t(order_ts) IS NULL"),
        ("invalid_order_ts", "unparsed(order_ts, c_order_ts)"),
        ("required_quantity", "t(quantity) IS NULL"),
        ("invalid_quantity", "unparsed(quantity, c_quantity)"),
        ("non_positive_quantity", "c_quantity <= 0"),
        ("required_unit_price", "t(unit_price) IS NULL"),
        ("invalid_unit_price", "unparsed(unit_price, c_unit_price)"),
        ("negative_unit_price", "c_unit_price < 0"),
        ("invalid_discount_amount", "c_discount_amount IS NULL"),
        ("negative_discount_amount", "c_discount_amount < 0"),
        ("invalid_tax_amount", "c_tax_amount IS NULL"),
        ("negative_tax_amount", "c_tax_amount < 0"),
        ("invalid_sales_channel", "c_sales_channel IS NULL"),
        ("invalid_is_returned", "c_is_returned IS NULL"),
        ("invalid_delivery_date", "unparsed(delivery_date, c_delivery_date)"),
        ("return_before_order", "ret AND (c_return_date IS NULL OR c_return_date < c_order_date)"),
        ("invalid_return_quantity", "ret AND (NOT coalesce(c_return_quantity > 0, false) OR c_return_quantity > c_quantity)"),
        ("invalid_return_amount", "ret AND (c_return_amount IS NULL OR c_return_amount < 0 OR c_return_amount > c_sales_total)"),
        ("order_after_drop_date", "c_order_date > drop_date"),
        ("order_outside_late_window", f"c_order_date < drop_date - INTERVAL {LATE_DATA_DAYS} DAY"),
        ("order_before_first_partition", f"c_order_date < DATE '{first.isoformat()}'"),
    ]
    typed = ("order_id", "line_number", "customer_id", "product_id", "store_id", "order_ts", "order_date",
             "delivery_date", "quantity", "unit_price", "discount_amount", "tax_amount", "sales_total",
             "sales_channel", "order_status", "is_returned", "return_date", "return_reason", "return_quantity",
             "return_amount")
    con.execute(f"CREATE TABLE sales_flagged AS SELECT *, {_flags(rules)} FROM sales_typed2")
    con.execute("DROP TABLE sales_typed2")
    con.execute(f"""
        CREATE TABLE silver_sales AS SELECT {', '.join(f'c_{c} AS {c}' for c in typed)}, drop_date, _source_file
        FROM sales_flagged WHERE NOT ({_any(rules)})
        QUALIFY row_number() OVER (PARTITION BY c_order_id, c_line_number ORDER BY drop_date DESC, _source_file DESC, _rid DESC) = 1""")
    con.execute(f"""
        CREATE TABLE sales_quarantine AS
        SELECT {', '.join(src)}, {_reasons([(n, f'r{i}') for i, (n, _) in enumerate(rules)])} AS reject_reasons,
               _source_file, _rid AS _row, drop_date
        FROM sales_flagged WHERE {_any(rules)}""")


GOLD = """
CREATE TABLE fact_sales AS
SELECT row_number() OVER (ORDER BY order_date) AS sales_id,
       order_id, line_number, customer_id, product_id, order_date, delivery_date,
       quantity, unit_price, discount_amount, tax_amount,
       sales_total, sales_channel, order_status,
       is_returned, return_date, return_reason, return_quantity, return_amount,
       current_timestamp AS load_timestamp
FROM silver_sales;

CREATE TABLE agg_daily_sales AS
WITH daily AS (
    SELECT order_date AS sales_date,
           sales_channel,
           CAST(SUM(sales_total) AS DECIMAL(18, 2)) AS total_revenue,
           SUM(quantity)::BIGINT AS total_quantity,
           COUNT(DISTINCT order_id) AS total_orders,
           COUNT(*) AS total_lines,
           COUNT(DISTINCT customer_id) AS unique_customers,
           SUM(CASE WHEN is_returned THEN 1 ELSE 0 END)::BIGINT AS return_count
    FROM fact_sales
    GROUP BY order_date, sales_channel),
cents AS (SELECT *, CAST(total_revenue * 100 AS HUGEINT) AS c FROM daily)
SELECT sales_date, sales_channel, total_revenue, total_quantity, total_orders, total_lines, unique_customers,
       return_count,
       -- revenue / orders, half-even to the cent, in exact integer arithmetic
       CAST(CAST(sign(c) * (abs(c) // total_orders
            + CASE WHEN 2 * (abs(c) % total_orders) > total_orders
                     OR (2 * (abs(c) % total_orders) = total_orders AND (abs(c) // total_orders) % 2 = 1)
                   THEN 1 ELSE 0 END) AS DECIMAL(18, 0)) * 0.01 AS DECIMAL(18, 2)) AS avg_order_value
FROM cents
ORDER BY sales_date, sales_channel;
"""


def run(landing: Path, out: Path, first: dt.date, last: dt.date) -> dict[str, int]:
    import duckdb

    con = duckdb.connect()
    con.execute(MACROS)
    rejected = {}
    for source, table in (("customer", "customer_bronze"), (SALES, "sales_bronze")):
        good, bad = loadable(landing, source, first, last)
        rejected.update({d.source_file: r for d, r in bad})
        _load(con, table, source, [d.path for d in good])
    clean_customers(con)
    clean_sales(con, first)
    con.execute(GOLD)
    for layer in ("silver", "gold"):
        (out / layer).mkdir(parents=True, exist_ok=True)
    copies = {
        "silver/customer.parquet": "silver_customer",
        "silver/customer_quarantine.parquet": "customer_quarantine",
        "silver/sales.parquet": "silver_sales",
        "silver/sales_quarantine.parquet": "sales_quarantine",
    }
    for path, table in copies.items():
        con.execute(f"COPY {table} TO '{out / path}' (FORMAT parquet)")
    con.execute(f"COPY fact_sales TO '{out / 'gold' / 'fact_sales'}' (FORMAT parquet, PARTITION_BY (order_date), OVERWRITE_OR_IGNORE)")
    con.execute(f"COPY agg_daily_sales TO '{out / 'gold' / 'agg_daily_sales'}' (FORMAT parquet, PARTITION_BY (sales_date), OVERWRITE_OR_IGNORE)")
    counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in (*copies.values(), "fact_sales", "agg_daily_sales")}
    counts["rejected_files"] = len(rejected)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peers_duckdb", description=__doc__.splitlines()[0])
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--first", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--last", type=dt.date.fromisoformat, required=True)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    counts = run(args.landing, args.out, args.first, args.last)
    print(f"duckdb: {counts} in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
