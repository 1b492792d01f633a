"""A real dagster-webserver for the tests: a free port on 127.0.0.1, asked over GraphQL, stopped by
its own process group (it ignores SIGTERM/SIGINT when started from a script unless the whole group
is signalled: see PLATFORM.md)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from retail_lakehouse_tests.processes import free_port, stop_group

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Answers with a non-empty list once the code location is loaded, not merely once the server listens.
READY_QUERY = "{ assetNodes { id } }"


def graphql(port: int, query: str, variables: Mapping[str, object] | None = None, timeout: float = 30) -> dict:
    """POSTs one GraphQL query and returns the whole answer (`data`, and `errors` if any)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": dict(variables or {})}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


class Webserver:
    """`dagster-webserver -h 127.0.0.1 -p <free port> -w <workspace>` with `env`, its output in `log`.

    `with Webserver(env) as web:` returns once `READY_QUERY` lists assets (or raises with the log's
    tail); `web.url` is the UI, `web.graphql(query)` asks it.
    """

    def __init__(self, env: Mapping[str, str], log: Path, workspace: Path = PROJECT_ROOT / "workspace.yaml",
                 startup_timeout: float = 90.0):
        self.env = dict(env)
        self.log = Path(log)
        self.workspace = workspace
        self.startup_timeout = startup_timeout
        self.port = free_port()
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def graphql(self, query: str, variables: Mapping[str, object] | None = None) -> dict:
        return graphql(self.port, query, variables)

    def start(self) -> Webserver:
        """`launch()`, then `wait_until_ready()`; stops the server if it never gets ready."""
        self.launch()
        try:
            self.wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def launch(self) -> Webserver:
        """Starts the process and returns at once (the caller may do other work while it loads)."""
        executable = os.path.join(os.path.dirname(sys.executable), "dagster-webserver")
        with self.log.open("wb") as out:
            self._proc = subprocess.Popen(
                [executable, "-h", "127.0.0.1", "-p", str(self.port), "-w", str(self.workspace)],
                cwd=PROJECT_ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM to the server's own process group (the code server it spawned included), then SIGKILL."""
        proc, self._proc = self._proc, None
        stop_group(proc, signal.SIGTERM, timeout)

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def __enter__(self) -> Webserver:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"dagster-webserver exited with code {self._proc.returncode}:\n{self.log_tail()}")
            try:
                if (self.graphql(READY_QUERY).get("data") or {}).get("assetNodes"):
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"dagster-webserver did not list the assets within {self.startup_timeout:.0f} s:\n{self.log_tail()}")
