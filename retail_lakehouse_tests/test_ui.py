"""The Dagster UI serves the code location: a real webserver on 127.0.0.1, asked over GraphQL."""

import os
import shutil

from retail_lakehouse_tests.webserver import PROJECT_ROOT, Webserver

QUERY = "{ assetNodes { assetKey { path } groupName partitionDefinition { description } } }"


def test_webserver_shows_every_layer_with_keys_groups_and_daily_partitions(tmp_path):
    # The instance settings `make ui` installs, so the webserver reads through the project's event log storage.
    shutil.copy(PROJECT_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "RETAIL_LAKEHOUSE_LAKE_ROOT": str(tmp_path / "lake"),
           "RETAIL_LAKEHOUSE_LANDING_ROOT": str(tmp_path / "landing"), "RETAIL_LAKEHOUSE_TOKEN_KEY": "ui-test-key"}
    # Started on a free 127.0.0.1 port; returns once the code location lists its assets (90 s at most).
    with Webserver(env, log=tmp_path / "webserver.log") as web:
        nodes = web.graphql(QUERY)["data"]["assetNodes"]
    by_key = {"/".join(n["assetKey"]["path"]): n for n in nodes}
    for key in ("bronze/sales_returns", "silver/sales", "silver/sales_quarantine", "gold/fact_sales", "gold/dim_customer"):
        assert by_key[key]["groupName"] == key.split("/")[0]
    assert by_key["gold/fact_sales"]["partitionDefinition"]["description"].startswith("Daily")
    assert by_key["gold/dim_customer"]["partitionDefinition"] is None
