-- Seed 000 §9.1 Sales Performance: per day and channel over the 30 days up to the newest order date.
-- Runs as it is in `make sql` (DuckDB over the Delta tables) and in the serving database (Postgres).
-- Adapted to gold: the 30 days end at the newest order date, not today, so a rebuild and the demo
-- data give the same answer; orders are distinct order_id (sales_id is a line); is_returned is a
-- boolean. AVG and / are DOUBLE in DuckDB and NUMERIC in Postgres: the CAST to DECIMAL(38, 10)
-- before ROUND makes both round the same decimal, half away from zero, to the same cents.
SELECT
    order_date AS sales_date,
    sales_channel,
    COUNT(DISTINCT order_id) AS num_orders,
    COUNT(*) AS num_lines,
    SUM(sales_total) AS total_revenue,
    ROUND(CAST(AVG(sales_total) AS DECIMAL(38, 10)), 2) AS avg_line_value,
    SUM(CASE WHEN is_returned THEN 1 ELSE 0 END) AS returns,
    ROUND(CAST(100.0 * SUM(CASE WHEN is_returned THEN 1 ELSE 0 END) / COUNT(*) AS DECIMAL(38, 10)), 2) AS return_rate
FROM gold.fact_sales
WHERE order_date > (SELECT MAX(order_date) FROM gold.fact_sales) - 30
GROUP BY order_date, sales_channel
ORDER BY sales_date DESC, total_revenue DESC, sales_channel;
