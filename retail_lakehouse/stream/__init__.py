"""The streaming path (seed 004 hot path): POS micro-batches merged into `gold/pos_ledger` and
`gold/inventory_positions` exactly once, by small runs a sensor requests.

| file | what it holds |
|---|---|
| `rules.py` | pure: which files are micro-batches, their delivery order, cleaning a batch's events, planning bounded runs |
| `tables.py` | the writes: the ledger MERGE with its Delta application transaction, and the one writer of the positions |
| `assets.py` | the ledger, `gold/inventory_positions` (stream runs and the daily recompute) and `gold/pos_sales_5min` |
| `sensor.py` | the `pos_merge` job and the `pos_stream` sensor that requests it |

Exactly once, even if a run dies after writing and before the sensor's cursor moves:
1. the batch's events are MERGEd into `gold/pos_ledger` on `event_id` (insert when not matched), so
   a replayed or re-delivered batch inserts nothing; the commit also carries a Delta application
   transaction naming the batch, so a replay is recognised without reading the ledger;
2. the positions of the (store, product) pairs the batch touched are recomputed from the latest
   snapshot and the ledger, and MERGEd into `gold/inventory_positions`. A recomputation is
   idempotent, so a crash between 1 and 2 is repaired by the replay.

One writer per table: `gold/inventory_positions` is written only by its asset, through
`tables.write_positions`. A `pos_merge` run materializes that asset with the batches to merge (its
checks run and its low-stock alert fires on the pairs the batches moved); the daily run
materializes it with none and recomputes every pair from the same two inputs.
"""
