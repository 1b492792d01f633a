"""The streaming path (seed 004 hot path): POS micro-batches merged into `gold/pos_ledger` and
`gold/inventory_positions` exactly once, by runs a sensor requests.

| file | what it holds |
|---|---|
| `rules.py` | pure: which files are micro-batches, their delivery order, cleaning events, what a sensor tick hands out, runs sized by data |
| `tables.py` | the writes: one ledger MERGE per run, and the one writer of the positions |
| `assets.py` | the ledger, `gold/inventory_positions` (stream runs and the daily recompute) and `gold/pos_sales_5min` |
| `sensor.py` | the `pos_merge` job and the `pos_stream` sensor that requests it |

Exactly once, even if a run dies after writing and before the sensor's cursor moves:
1. a run's batches are read together and their events MERGEd into `gold/pos_ledger` in one commit
   on `event_id` (insert when not matched), so a replayed or re-delivered batch inserts nothing it
   already did; its `batch` column records which batch each event came from;
2. the positions of the (store, product) pairs the batches touched are recomputed once from the
   latest snapshot and the ledger, and MERGEd into `gold/inventory_positions`. A recomputation is
   idempotent, so a crash between 1 and 2 is repaired by the replay.

What the sensor remembers is bounded: the newest business date seen (watermark) and the
fingerprints of the batches of the late window behind it (`LATE_DAYS`); a tick lists only those
dates (by name prefix). Once a day it lists the last five weeks and requests what the ledger lacks
from before the window: batches that landed too late for the window, or whose run failed. A sensor
without a cursor (new, or reset) compares the whole folder with the ledger.

One writer per table: `gold/inventory_positions` is written only by its asset, through
`tables.write_positions`. A `pos_merge` run materializes that asset with the batches to merge (its
checks run and its low-stock alert fires on the pairs the batches moved); the daily run
materializes it with none and recomputes every pair from the same two inputs.
"""
