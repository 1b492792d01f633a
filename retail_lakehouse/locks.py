"""One run at a time writes a lakehouse: an exclusive lock on a file next to its tables.

Why a lock per run and not per write: a run reads what it wrote a step earlier (bronze, then
silver from bronze). Two overlapping runs that only took turns at each write would still let one
compute silver from bronze the other was replacing, and an unpartitioned table written last from
the older input would stay stale. Holding the lock from the run's start to its end makes
concurrent runs behave as if run one after the other, which the re-run tests already prove
leaves the tables of one clean run.

Why not Dagster's concurrency pools alone: a pool slot lives in the instance's database, so runs
started with different DAGSTER_HOMEs (or none) never see each other, and a CLI run that is killed
keeps its slot until someone frees it by hand, blocking that pool for every later run. An
`flock` lives in the kernel: it covers every process on the machine that writes these tables, and
the kernel drops it when its holder exits, however it exits. It does not reach other machines
(ADLS from two hosts): there Delta's commit conflict check stays the guard.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Self

import dagster as dg

from retail_lakehouse.settings import LOCK_TIMEOUT_SECONDS

LOCK_FILE_NAME = ".lakehouse.lock"


class LakeBusyError(TimeoutError):
    """The lock was still held when the timeout ran out; the message names the holder."""


class LakeLock:
    """An exclusive, non-reentrant lock on `path`; `acquire` waits up to `timeout` seconds.

    The holder's description is written into the file while it holds the lock, so whoever waits
    can say whom it waits for.
    """

    def __init__(self, path: Path, what: str, timeout: float = LOCK_TIMEOUT_SECONDS, poll: float = 0.5):
        self.path = Path(path)
        self.what = what
        self.timeout = timeout
        self.poll = poll
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, holder: Mapping[str, object], on_wait: Callable[[str], None] | None = None) -> None:
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this lock object")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + self.timeout
            told = False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    who = describe(read_holder(self.path))
                    if time.monotonic() >= deadline:
                        waited = f"still being written by {who} after {self.timeout:g} s"
                        if not self.timeout:
                            waited = f"being written by {who}"
                        raise LakeBusyError(
                            f"{self.what} is {waited}: let that run finish (or stop it), then start this one again"
                        ) from None
                    if not told and on_wait is not None:
                        on_wait(f"waiting for {who} to finish writing {self.what} (giving up after {self.timeout:g} s)")
                        told = True
                    time.sleep(self.poll)
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(dict(holder), default=str).encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            # Emptied first, so a waiter never names a holder that has already gone.
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> Self:
        self.acquire({"pid": os.getpid(), "host": socket.gethostname(), "since": _now()})
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def read_holder(path: Path) -> dict | None:
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    try:
        value = json.loads(text) if text.strip() else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def describe(holder: Mapping[str, object] | None) -> str:
    if not holder:
        return "another run"
    parts = [f"job {holder['job']}" if holder.get("job") else None, f"pid {holder.get('pid')} on {holder.get('host')}"]
    if holder.get("since"):
        parts.append(f"since {holder['since']}")
    who = f"run {holder['run_id']}" if holder.get("run_id") else "another process"
    return f"{who} ({', '.join(p for p in parts if p)})"


def run_holder(run: dg.DagsterRun) -> dict[str, object]:
    return {"run_id": run.run_id, "job": run.job_name, "pid": os.getpid(), "host": socket.gethostname(), "since": _now()}


# Locks this process holds for runs, by file: a run whose resources are initialized twice in one
# process (a resource nested in another and also bound at top level, say) must not wait for itself.
_RUN_LOCKS: dict[Path, tuple[LakeLock, str, int]] = {}
_RUN_LOCKS_GUARD = threading.Lock()


@contextlib.contextmanager
def lake_lock_for_run(
    path: Path, what: str, context: dg.InitResourceContext, timeout: float = LOCK_TIMEOUT_SECONDS
) -> Iterator[None]:
    """Holds the lakehouse lock for the run `context` belongs to; a no-op outside a run.

    Meant for a resource's `setup_for_execution`, which the in-process executor calls once before
    the run's first step (and `teardown_after_execution` once after its last, failed or not). A
    timeout fails the run with one line and is not retried: the steps have not started.
    """
    run = context.run
    if run is None:
        yield
        return
    key = Path(path).absolute()
    with _RUN_LOCKS_GUARD:
        held = _RUN_LOCKS.get(key)
        if held is not None and held[1] == run.run_id:
            _RUN_LOCKS[key] = (held[0], held[1], held[2] + 1)
            lock = None
        else:
            lock = LakeLock(key, what, timeout)
    if lock is not None:
        try:
            lock.acquire(run_holder(run), on_wait=context.log.info if context.log else None)
        except LakeBusyError as err:
            raise dg.Failure(description=str(err), allow_retries=False) from None
        with _RUN_LOCKS_GUARD:
            _RUN_LOCKS[key] = (lock, run.run_id, 1)
    try:
        yield
    finally:
        with _RUN_LOCKS_GUARD:
            lock, run_id, count = _RUN_LOCKS[key]
            if count > 1:
                _RUN_LOCKS[key] = (lock, run_id, count - 1)
            else:
                del _RUN_LOCKS[key]
                lock.release()


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
