"""Servers the tests start: a free port on 127.0.0.1, and stopping one by its own process group."""

import os
import signal
import socket
import subprocess


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_group(proc: subprocess.Popen | None, first: int = signal.SIGTERM, timeout: float = 15.0) -> None:
    """`first` to the process group `proc` leads (started with start_new_session), SIGKILL if it
    has not ended within `timeout`; children it spawned (a code server, a backend) go with it."""
    if proc is None or proc.poll() is not None:
        return
    for sig in (first, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            continue
