-- Seed 000 §9.2 Customer Lifetime Value: one row per customer with sales, highest value first.
-- Runs as it is in `make sql` (DuckDB over the Delta tables) and in the serving database (Postgres).
-- Adapted to gold: dim_customer is SCD Type 2, so only the current version of each customer joins
-- (else a customer with two versions counts every sale twice); orders are distinct order_id and
-- the average is per order, as in gold/customer_lifetime_value; recency counts from the newest
-- order date, not today. The CAST before ROUND: see 9_1_sales_performance.sql.
SELECT
    c.customer_id,
    c.name,
    c.customer_segment,
    COUNT(DISTINCT s.order_id) AS total_orders,
    SUM(s.sales_total) AS lifetime_value,
    MAX(s.order_date) AS last_purchase_date,
    (SELECT MAX(order_date) FROM gold.fact_sales) - MAX(s.order_date) AS days_since_purchase,
    ROUND(CAST(SUM(s.sales_total) / COUNT(DISTINCT s.order_id) AS DECIMAL(38, 10)), 2) AS avg_order_value
FROM gold.dim_customer c
LEFT JOIN gold.fact_sales s ON c.customer_id = s.customer_id
WHERE c.is_current
GROUP BY c.customer_id, c.name, c.customer_segment
HAVING COUNT(DISTINCT s.order_id) > 0
ORDER BY lifetime_value DESC, c.customer_id;
