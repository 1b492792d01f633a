"""Weekly Delta maintenance (seed 004 performance): compact small files, vacuum after 7 days.

Daily partition writes leave one small file per partition and write; compaction rewrites them into
fewer, larger files, and vacuum deletes files no version younger than the retention needs, and
files no version ever referenced once they are older than the retention.
"""

import dagster as dg
from deltalake import DeltaTable

from retail_lakehouse.storage import Lakehouse

RETENTION_HOURS = 7 * 24
MAINTENANCE_JOB = "delta_maintenance"


def maintain(uri: str, storage_options: dict[str, str] | None = None, retention_hours: int = RETENTION_HOURS) -> dict:
    table = DeltaTable(uri, storage_options=storage_options or None)
    compacted = table.optimize.compact()
    # full: also files no commit ever referenced (a step that failed between writing its files and
    # committing them, e.g. the Spark engine's workers), once they are older than the retention.
    removed = table.vacuum(retention_hours=retention_hours, dry_run=False, enforce_retention_duration=True, full=True)
    return {"files_added": compacted.get("numFilesAdded", 0), "files_removed": compacted.get("numFilesRemoved", 0), "vacuumed": len(removed)}


def build_maintenance(table_keys: list[dg.AssetKey]):
    @dg.op
    def compact_and_vacuum(context: dg.OpExecutionContext, lake: Lakehouse) -> None:
        """Compact and vacuum every table of the lakehouse."""
        for key in table_keys:
            if lake.exists(key):
                with lake.storage_errors(key, "compacting and vacuuming"):
                    stats = maintain(lake.table_uri(key), lake.storage_options(key))
                context.log.info(f"{key.to_user_string()}: {stats}")

    @dg.job(name=MAINTENANCE_JOB, executor_def=dg.in_process_executor)
    def delta_maintenance():
        compact_and_vacuum()

    schedule = dg.ScheduleDefinition(
        name="weekly_delta_maintenance", job=delta_maintenance, cron_schedule="0 3 * * 0", execution_timezone="UTC"
    )
    return delta_maintenance, schedule
