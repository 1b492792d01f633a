"""Run policies every asset shares (seed 000 Jobs: retries 2 with backoff; SPEC §5 single-run backfills)."""

import dagster as dg

# Retries any exception but a `dg.Failure(allow_retries=False)`: that is how a bad invocation (a
# reversed range, a lake another run holds past the timeout) fails at once, since running the same
# step again cannot fix what the user asked for.
RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
SINGLE_RUN = dg.BackfillPolicy.single_run()
