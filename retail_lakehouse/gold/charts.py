"""What an analyst looks at in the UI beside a gold table's rows: daily revenue per channel.

Dagster's asset page renders Markdown, so the chart is a Markdown table of bars; the same figures go
out as a Vega-Lite spec (JSON metadata) for anyone who wants to paste them into a Vega viewer.
"""

import polars as pl

CHART_DAYS = 31
BAR_WIDTH = 30


def daily_revenue(agg: pl.DataFrame, days: int = CHART_DAYS) -> pl.DataFrame:
    """Revenue per sales date (rows) and channel (columns) over the newest `days` days of `agg`."""
    if agg.is_empty():
        return pl.DataFrame(schema={"sales_date": pl.Date})
    newest = agg["sales_date"].max()
    recent = agg.filter(pl.col("sales_date") > pl.lit(newest) - pl.duration(days=days))
    return (
        recent.pivot(on="sales_channel", index="sales_date", values="total_revenue", aggregate_function="sum", sort_columns=True)
        .sort("sales_date")
        .fill_null(0)
    )


def revenue_bars(agg: pl.DataFrame, days: int = CHART_DAYS) -> str:
    """A Markdown table: one row per day, per channel its revenue and a bar scaled to the busiest day."""
    table = daily_revenue(agg, days)
    channels = [c for c in table.columns if c != "sales_date"]
    if not channels:
        return "no sales in the window"
    top = max(float(table[c].max()) for c in channels) or 1.0
    head = "| sales_date | " + " | ".join(channels) + " |\n|---|" + "---|" * len(channels) + "\n"
    rows = []
    for row in table.iter_rows(named=True):
        cells = [f"{row[c]:,.2f} {'█' * round(BAR_WIDTH * float(row[c]) / top)}" for c in channels]
        rows.append(f"| {row['sales_date']} | " + " | ".join(cells) + " |")
    return head + "\n".join(rows)


def revenue_vega(agg: pl.DataFrame, days: int = CHART_DAYS) -> dict:
    """A Vega-Lite line chart of the same figures: revenue per day, one line per channel."""
    newest = agg["sales_date"].max() if agg.height else None
    recent = agg.filter(pl.col("sales_date") > pl.lit(newest) - pl.duration(days=days)) if newest else agg
    values = [
        {"sales_date": d.isoformat(), "sales_channel": c, "total_revenue": float(r)}
        for d, c, r in recent.select("sales_date", "sales_channel", "total_revenue").sort("sales_date", "sales_channel").iter_rows()
    ]
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": "Revenue per day and channel",
        "data": {"values": values},
        "mark": {"type": "line", "point": True},
        "encoding": {
            "x": {"field": "sales_date", "type": "temporal", "title": "sales date"},
            "y": {"field": "total_revenue", "type": "quantitative", "title": "revenue"},
            "color": {"field": "sales_channel", "type": "nominal", "title": "channel"},
        },
    }
