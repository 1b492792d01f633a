"""A real PostgreSQL server for the tests: a throwaway cluster on 127.0.0.1, stopped by its own PID.

Debian's `postgresql` package (the Makefile installs it where missing) provides `initdb` and
`postgres`. The server refuses to run as root, so under root it runs as the package's `postgres`
user. Trust authentication is enough: it listens only on 127.0.0.1 and on a socket in its own folder.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from retail_lakehouse_tests.processes import free_port, stop_group


class PostgresNotInstalled(RuntimeError):
    pass


def _bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise PostgresNotInstalled(f"PostgreSQL's {name} is not installed: `make test` installs Debian's postgresql package (apt-get install postgresql)")
    return found


class Postgres:
    """One PostgreSQL cluster with a database `name`; `url` is a SQLAlchemy URL for psycopg2."""

    def __init__(self, name: str = "lakehouse", startup_timeout: float = 30.0):
        self.name = name
        self.port = free_port()
        self.startup_timeout = startup_timeout
        self.folder = Path(tempfile.mkdtemp(prefix="postgres-"))
        self.data = self.folder / "data"
        self._proc: subprocess.Popen | None = None
        # Under root the cluster belongs to the `postgres` user; otherwise to whoever runs the tests.
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.user = "postgres" if self._as else os.environ.get("USER", "postgres")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{self.name}"

    def start(self) -> Postgres:
        # `with Postgres() as pg` never reaches __exit__ when __enter__ raises: a start that fails
        # half-way (initdb, the server, CREATE DATABASE) stops what it started and removes its folder.
        try:
            self._start()
        except BaseException:
            self.stop()
            shutil.rmtree(self.folder, ignore_errors=True)
            raise
        return self

    def _start(self) -> None:
        if self._as:
            shutil.chown(self.folder, "postgres")
        subprocess.run([*self._as, _bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", self.user, "--no-sync", "-E", "UTF8"],
                       check=True, capture_output=True)
        log = (self.folder / "postgres.log").open("wb")
        try:
            self._proc = subprocess.Popen(
                [*self._as, _bin("postgres"), "-D", str(self.data), "-p", str(self.port), "-k", str(self.folder),
                 "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        finally:
            log.close()
        self._wait_until_answering()
        self.psql(f"CREATE DATABASE {self.name}", database="postgres")

    def psql(self, sql: str, database: str | None = None) -> str:
        """Runs `sql` with psql over TCP and returns its unaligned output."""
        out = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", database or self.name, "-AXqt", "-v", "ON_ERROR_STOP=1", "-c", sql],
            check=True, capture_output=True, text=True,
        )
        return out.stdout

    def stop(self, timeout: float = 15.0) -> None:
        """SIGINT (fast shutdown) to the server's own process group, then SIGKILL."""
        proc, self._proc = self._proc, None
        stop_group(proc, signal.SIGINT, timeout)

    def __enter__(self) -> Postgres:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _wait_until_answering(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"postgres exited with code {self._proc.returncode}:\n{(self.folder / 'postgres.log').read_text(errors='replace')[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
                self.psql("SELECT 1", database="postgres")
                return
            except (OSError, subprocess.CalledProcessError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"postgres on port {self.port} did not answer within {self.startup_timeout:.0f} s")
