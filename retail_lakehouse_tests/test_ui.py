"""The Dagster UI serves the code location: a real webserver on 127.0.0.1, asked over GraphQL."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

QUERY = "{ assetNodes { assetKey { path } groupName partitionDefinition { description } } }"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_webserver_shows_every_layer_with_keys_groups_and_daily_partitions(tmp_path):
    port = _free_port()
    # The instance settings `make ui` installs, so the webserver reads through the project's event log storage.
    shutil.copy(PROJECT_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "RETAIL_LAKEHOUSE_LAKE_ROOT": str(tmp_path / "lake"),
           "RETAIL_LAKEHOUSE_LANDING_ROOT": str(tmp_path / "landing"), "RETAIL_LAKEHOUSE_TOKEN_KEY": "ui-test-key"}
    webserver = os.path.join(os.path.dirname(sys.executable), "dagster-webserver")
    proc = subprocess.Popen(
        [webserver, "-h", "127.0.0.1", "-p", str(port), "-w", str(PROJECT_ROOT / "workspace.yaml")],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        nodes = None
        while time.monotonic() < deadline:
            try:
                nodes = _graphql(port, QUERY)["data"]["assetNodes"]
                if nodes:
                    break
            except OSError:
                pass
            time.sleep(1)
        assert nodes, "the webserver did not answer within 90 s"
        by_key = {"/".join(n["assetKey"]["path"]): n for n in nodes}
        for key in ("bronze/sales_returns", "silver/sales", "silver/sales_quarantine", "gold/fact_sales", "gold/dim_customer"):
            assert by_key[key]["groupName"] == key.split("/")[0]
        assert by_key["gold/fact_sales"]["partitionDefinition"]["description"].startswith("Daily")
        assert by_key["gold/dim_customer"]["partitionDefinition"] is None
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
