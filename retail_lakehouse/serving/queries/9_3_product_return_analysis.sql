-- Seed 000 §9.3 Product Return Analysis: one row per current product, highest return rate first.
-- Runs as it is in `make sql` (DuckDB over the Delta tables) and in the serving database (Postgres).
-- Adapted to gold: only the current version of each product (dim_product is SCD Type 2) joins;
-- is_returned is a boolean; NULLIF keeps a product without revenue from dividing by zero (an error
-- in Postgres); NULLS LAST because Postgres sorts NULL first when descending and DuckDB last.
-- The CAST before ROUND: see 9_1_sales_performance.sql.
SELECT
    p.product_id,
    p.name,
    p.category,
    COUNT(DISTINCT s.sales_id) AS total_sales,
    SUM(s.quantity) AS total_units_sold,
    SUM(CASE WHEN s.is_returned THEN s.return_quantity ELSE 0 END) AS units_returned,
    ROUND(CAST(100.0 * SUM(CASE WHEN s.is_returned THEN s.return_quantity ELSE 0 END)
               / NULLIF(SUM(s.quantity), 0) AS DECIMAL(38, 10)), 2) AS return_rate_pct,
    SUM(s.sales_total) AS total_revenue,
    SUM(CASE WHEN s.is_returned THEN s.return_amount ELSE 0 END) AS total_refunds,
    ROUND(CAST(100.0 * SUM(CASE WHEN s.is_returned THEN s.return_amount ELSE 0 END)
               / NULLIF(SUM(s.sales_total), 0) AS DECIMAL(38, 10)), 2) AS refund_rate_pct
FROM gold.dim_product p
LEFT JOIN gold.fact_sales s ON p.product_id = s.product_id
WHERE p.is_current
GROUP BY p.product_id, p.name, p.category
ORDER BY return_rate_pct DESC NULLS LAST, total_sales DESC, p.product_id;
