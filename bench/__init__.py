"""`make bench`: the lakehouse against its own lower bound and the seeds' peers, whole processes timed.

    .venv/bin/python -m bench --scale 1              # a year (365 days) at scale 1
    .venv/bin/python -m bench --scale 0.1 --days 30  # a quick trial

Modules: `run` (the harness: data, interleaved rounds, `/usr/bin/time -v`), `lower_bound` (d: the
project's transforms in one plain process, Parquet out), `peers_duckdb` (e), `peers_pyspark` (f),
`common` (drop listing and vetting, the agg_daily_sales comparison), `report` (Markdown, JSON
history, scaling plot). Each implementation is its own entry point, run as a separate process.
"""
