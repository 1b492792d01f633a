"""An independent referee: SPEC §4's sales rules in DuckDB SQL, straight from the landing CSVs.

It shares no code with the pipeline: files are read with Python's csv module, rows numbered here,
and every rule is written again in SQL. Malformed files are skipped by the generator's own list.
"""

import csv
import datetime as dt
from pathlib import Path

import duckdb
import pyarrow as pa

SALES_SQL = """
WITH raw AS (
    SELECT *, strptime(regexp_extract(file, '_(\\d{8})_\\d{6}', 1), '%Y%m%d')::DATE AS drop_date
    FROM lines
),
typed AS (
    SELECT *,
        try_strptime(order_ts, '%Y-%m-%d %H:%M:%S') AS ts,
        TRY_CAST(quantity AS INTEGER) AS q,
        TRY_CAST(unit_price AS DECIMAL(18, 2)) AS p,
        TRY_CAST(coalesce(nullif(discount_amount, ''), '0') AS DECIMAL(18, 2)) AS d,
        TRY_CAST(coalesce(nullif(tax_amount, ''), '0') AS DECIMAL(18, 2)) AS t,
        CASE lower(trim(sales_channel))
            WHEN 'online' THEN 'Online' WHEN 'web' THEN 'Online'
            WHEN 'store' THEN 'Store' WHEN 'in-store' THEN 'Store' WHEN 'pos' THEN 'Store'
            WHEN 'mobile' THEN 'Mobile' WHEN 'app' THEN 'Mobile' WHEN 'mobile app' THEN 'Mobile'
        END AS channel,
        lower(trim(is_returned)) IN ('1', 'true', 'y') AS returned,
        TRY_CAST(return_date AS DATE) AS rdate,
        TRY_CAST(return_quantity AS INTEGER) AS rq,
        TRY_CAST(return_amount AS DECIMAL(18, 2)) AS ra
    FROM raw
),
valid AS (
    SELECT *, ts::DATE AS order_date, round(q * p - d + t, 2) AS total
    FROM typed
    WHERE nullif(order_id, '') IS NOT NULL AND nullif(line_number, '') IS NOT NULL
      AND nullif(customer_id, '') IS NOT NULL AND nullif(product_id, '') IS NOT NULL
      AND ts IS NOT NULL AND q > 0 AND p >= 0 AND d >= 0 AND t >= 0 AND channel IS NOT NULL
      AND ts::DATE <= drop_date AND ts::DATE >= drop_date - INTERVAL 30 DAY
      AND (NOT returned OR (rdate >= ts::DATE AND rq > 0 AND rq <= q AND ra >= 0
                            AND ra <= round(q * p - d + t, 2)))
),
latest AS (
    SELECT * FROM valid
    QUALIFY row_number() OVER (PARTITION BY order_id, line_number ORDER BY file DESC, row_no DESC) = 1
)
SELECT order_date, channel AS sales_channel, sum(total) AS revenue, sum(q) AS quantity,
       count(DISTINCT order_id) AS orders, count(*) AS lines, count(*) FILTER (WHERE returned) AS returns
FROM latest GROUP BY ALL ORDER BY ALL
"""


def expected_daily_sales(landing: Path, malformed: set[str], last_drop: dt.date) -> list[tuple]:
    rows = []
    for path in sorted((landing / "sales_returns").glob("*.csv")):
        rel = f"sales_returns/{path.name}"
        if rel in malformed or path.name.split("_")[2] > last_drop.strftime("%Y%m%d"):
            continue
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            for number, record in enumerate(reader, start=1):
                rows.append({"file": rel, "row_no": number, **record})
    con = duckdb.connect()
    con.register("lines", pa.Table.from_pylist(rows))
    return con.execute(SALES_SQL).fetchall()
