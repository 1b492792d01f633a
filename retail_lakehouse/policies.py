"""Run policies every asset shares (seed 000 Jobs: retries 2 with backoff; SPEC §5 single-run backfills)."""

import dagster as dg

RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
SINGLE_RUN = dg.BackfillPolicy.single_run()
