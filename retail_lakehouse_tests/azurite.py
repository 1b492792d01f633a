"""A real Azurite (Blob endpoint) for the tests: started in its own process group, stopped by it.

Azurite comes from `npm ci` (package.json pins 3.37.0; 3.35 mishandles delta-rs listings). It is
started with `--blobPort 0` so parallel runs never collide, and the port it picked is read from its
output. `restart()` brings it back on the same port, which a test of a storage outage needs; data
survives a restart only with a disk `location` (in-memory persistence is lost with the process).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# The emulator's well-known development account (public, documented by Azurite).
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

_LISTENING = re.compile(r"listens on https?://[^\s:]+:(\d+)")


class AzuriteNotInstalled(RuntimeError):
    pass


def azurite_binary(project_root: Path = PROJECT_ROOT) -> Path:
    binary = project_root / "node_modules" / ".bin" / "azurite-blob"
    if not binary.exists():
        raise AzuriteNotInstalled(
            f"Azurite is not installed: {binary} is missing. Run `npm ci` in {project_root} "
            "(Node 20+ and npm; installs the azurite version pinned in package-lock.json)."
        )
    return binary


class Azurite:
    """One Azurite Blob service on 127.0.0.1.

    `location=None` keeps everything in memory; a folder keeps blobs on disk across `restart()`.
    """

    def __init__(self, location: Path | None = None, project_root: Path = PROJECT_ROOT, startup_timeout: float = 30.0):
        self.binary = azurite_binary(project_root)
        self.location = Path(location) if location is not None else None
        self.startup_timeout = startup_timeout
        self.port = 0
        self._workdir = Path(tempfile.mkdtemp(prefix="azurite-"))
        self._proc: subprocess.Popen | None = None
        self._starts = 0
        self._log_path = self._workdir / "azurite-0.log"

    # -- where ------------------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.endpoint};"
        )

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> Azurite:
        if self.running:
            return self
        args = [
            str(self.binary),
            "--blobHost", "127.0.0.1",
            "--blobPort", str(self.port),
            # Without it Azurite may not exit on SIGTERM.
            "--disableTelemetry",
            "--skipApiVersionCheck",
        ]
        if self.location is None:
            args.append("--inMemoryPersistence")
        else:
            self.location.mkdir(parents=True, exist_ok=True)
            args += ["--location", str(self.location)]
        # A fresh log per start, so the port read is this start's and not an earlier one's.
        self._starts += 1
        self._log_path = self._workdir / f"azurite-{self._starts}.log"
        log = self._log_path.open("wb")
        try:
            self._proc = subprocess.Popen(
                args,
                cwd=self._workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        self.port = self._wait_for_port()
        self._wait_until_answering()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop Azurite by its own process group: SIGTERM (it saves its metadata), then SIGKILL."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        self._signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal_group(proc, signal.SIGKILL)
            proc.wait(timeout)

    def restart(self) -> Azurite:
        """Stop if running and start again on the same port."""
        self.stop()
        return self.start()

    def __enter__(self) -> Azurite:
        return self.start()

    def close(self) -> None:
        """Stop and remove the working folder (logs); a disk `location` is the caller's to keep."""
        self.stop()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __exit__(self, *exc) -> None:
        self.close()

    # -- internals --------------------------------------------------------------------------------

    @staticmethod
    def _signal_group(proc: subprocess.Popen, sig: int) -> None:
        try:
            # start_new_session made the child the leader of a group whose id is its pid.
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass

    def _log_tail(self) -> str:
        try:
            return self._log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def _wait_for_port(self) -> int:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            found = _LISTENING.search(self._log_path.read_text(errors="replace"))
            if found:
                return int(found.group(1))
            if self._proc.poll() is not None:
                raise RuntimeError(f"Azurite exited with code {self._proc.returncode}:\n{self._log_tail()}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"Azurite did not report a port within {self.startup_timeout:.0f} s:\n{self._log_tail()}")

    def _wait_until_answering(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        url = f"http://127.0.0.1:{self.port}/{ACCOUNT_NAME}?comp=list"
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(url, timeout=1).close()
                return
            except urllib.error.HTTPError:
                return  # any HTTP answer (403 for an unsigned request) means it is serving
            except OSError:
                if self._proc is None or self._proc.poll() is not None:
                    raise RuntimeError(f"Azurite exited while starting:\n{self._log_tail()}") from None
                time.sleep(0.05)
        raise RuntimeError(f"Azurite on port {self.port} did not answer within {self.startup_timeout:.0f} s")
