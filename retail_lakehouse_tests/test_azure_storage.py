"""ADLS Gen2 storage against a real Azurite: Delta windows, the landing zone, credentials, outages.

Azurite serves the Blob endpoint only, which is all this code uses (see `retail_lakehouse.azure`).
It must be installed with `npm ci`; without it these tests fail (they do not skip).
"""

import datetime as dt
import time
import uuid

import dagster as dg
import polars as pl
import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError
from azure.storage.blob import ContainerSasPermissions, generate_container_sas
from deltalake import DeltaTable

from retail_lakehouse.azure import (
    AzureAccessError,
    AzureAccount,
    AzureLakehouse,
    AzureLandingZone,
    AzureStorageError,
    AzureUnavailableError,
    build_azure_resources,
    check_access,
    ensure_containers,
    upload_landing,
    with_retries,
)
from retail_lakehouse.landing import Drop
from retail_lakehouse.orchestration import range_tags
from retail_lakehouse.partitions import window_dates
from retail_lakehouse.settings import SettingsError
from retail_lakehouse.storage import AUDIT_LOG_KEY, PARTITION_COLUMN, DeltaIOManager
from retail_lakehouse_tests.azurite import ACCOUNT_KEY, ACCOUNT_NAME, Azurite, AzuriteNotInstalled, azurite_binary

DAYS = dg.DailyPartitionsDefinition(start_date="2026-09-01", end_date="2026-10-01", timezone="UTC")
D1, D2, D3 = dt.date(2026, 9, 1), dt.date(2026, 9, 2), dt.date(2026, 9, 3)
# A well-formed key that is not the account's: base64 of 64 bytes, like a real one.
WRONG_KEY = "Q" * 86 + "=="
# Containers the shared emulator gets; `silver` is left out so a test can meet a missing container.
CREATED = ("bronze", "gold", "ops", "landing")


def _start(location=None) -> Azurite:
    try:
        return Azurite(location=location).start()
    except AzuriteNotInstalled as err:
        pytest.fail(str(err), pytrace=False)


@pytest.fixture(scope="session")
def azurite():
    az = _start()
    try:
        ensure_containers(AzureAccount(ACCOUNT_NAME, account_key=ACCOUNT_KEY, endpoint=az.endpoint), CREATED)
        yield az
    finally:
        az.close()


def _lake(az: Azurite, **overrides) -> AzureLakehouse:
    config = {"account_name": ACCOUNT_NAME, "account_key": ACCOUNT_KEY, "endpoint": az.endpoint, "retry_timeout_seconds": 5}
    return AzureLakehouse(**{**config, **overrides})


def _io(az: Azurite, **overrides) -> DeltaIOManager:
    return DeltaIOManager(lake=_lake(az, **overrides))


def _read(az: Azurite, uri: str) -> pl.DataFrame:
    account = AzureAccount(ACCOUNT_NAME, account_key=ACCOUNT_KEY, endpoint=az.endpoint)
    return pl.read_delta(uri, storage_options=account.storage_options())


def _version(az: Azurite, uri: str) -> int:
    account = AzureAccount(ACCOUNT_NAME, account_key=ACCOUNT_KEY, endpoint=az.endpoint)
    return DeltaTable(uri, storage_options=account.storage_options()).version()


def _assets(table: str):
    """A daily table whose rows carry the run's `batch` tag, and an unpartitioned total over it."""

    @dg.asset(
        key=["bronze", table],
        partitions_def=DAYS,
        metadata={PARTITION_COLUMN: "day"},
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def daily(context: dg.AssetExecutionContext) -> pl.DataFrame:
        first, end = window_dates(context.partition_time_window)
        days = [first + dt.timedelta(days=i) for i in range((end - first).days)]
        batch = int(context.run.tags.get("batch", "1"))
        return pl.DataFrame({"day": days * 2, "amount": [batch] * (2 * len(days))})

    @dg.asset(key=["gold", f"{table}_total"], ins={"daily": dg.AssetIn(key=["bronze", table])})
    def total(daily: pl.LazyFrame) -> pl.DataFrame:
        return daily.select(pl.len().cast(pl.Int64).alias("rows"), pl.col("amount").sum()).collect()

    return daily, total


def _materialize(assets, io, selection=None, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize(assets, selection=selection, resources={"io_manager": io}, **kwargs)


def _step_error(result: dg.ExecuteInProcessResult) -> str:
    [failure] = [event for event in result.all_events if event.is_step_failure]
    error = failure.step_failure_data.error
    return "\n".join(e.message for e in (error, error.cause) if e is not None)


# -- Delta tables -----------------------------------------------------------------------------------


def test_io_manager_replaces_exactly_a_window_and_reads_whole_tables(azurite):
    table = f"sales_{uuid.uuid4().hex[:8]}"
    daily, total = _assets(table)
    io = _io(azurite)

    assert _materialize([daily], io, tags={**range_tags(D1, D3), "batch": "1"}).success
    result = _materialize([daily], io, partition_key=D2.isoformat(), tags={"batch": "5"})
    assert result.success
    [event] = result.get_asset_materialization_events()
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    assert metadata["delta_version"] == 1
    assert metadata["partitions"] == "2026-09-02..2026-09-02"
    assert metadata["table_uri"] == f"{azurite.endpoint}/bronze/{table}"

    rows = _read(azurite, f"az://bronze/{table}").group_by("day").agg(pl.col("amount").unique()).sort("day")
    assert rows.to_dicts() == [{"day": D1, "amount": [1]}, {"day": D2, "amount": [5]}, {"day": D3, "amount": [1]}]

    # An unpartitioned reader sees every day of the partitioned table.
    assert _materialize([daily, total], io, selection=[total]).success
    assert _read(azurite, f"az://gold/{table}_total").to_dicts() == [{"rows": 6, "amount": 14}]

    audit = _read(azurite, "az://ops/audit_log").filter(pl.col("table").str.starts_with(table))
    assert sorted(zip(audit["table"], audit["partitions"], audit["record_count"])) == [
        (table, "2026-09-01..2026-09-03", 6),
        (table, "2026-09-02..2026-09-02", 2),
        (f"{table}_total", "all", 1),
    ]


def test_table_locations_options_and_display_carry_no_secret(azurite):
    lake = _lake(azurite)
    key = dg.AssetKey(["gold", "daily_sales"])
    assert lake.table_uri(key) == "az://gold/daily_sales"
    options = lake.storage_options(key)
    assert options["allow_http"] == "true" and options["endpoint"] == azurite.endpoint
    assert ACCOUNT_KEY not in lake.display_uri(key)
    cloud = AzureLakehouse(account_name="contosolake", sas_token="?sv=2024&sig=s3cret")
    assert cloud.display_uri(key) == "abfss://gold@contosolake.dfs.core.windows.net/daily_sales"
    assert cloud.storage_options(key)["sas_token"] == "sv=2024&sig=s3cret"  # no leading "?"
    assert "allow_http" not in cloud.storage_options(key)
    with pytest.raises(ValueError, match="unknown layer"):
        lake.table_uri(dg.AssetKey(["platinum", "x"]))


# -- credentials and clear failures -----------------------------------------------------------------


def _gold_sas(az: Azurite) -> str:
    permission = ContainerSasPermissions(read=True, add=True, create=True, write=True, delete=True, list=True)
    expiry = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    return generate_container_sas(ACCOUNT_NAME, "gold", account_key=ACCOUNT_KEY, permission=permission, expiry=expiry)


# Contexts are entered so the resources they build are closed here, not by the garbage collector.
def _load(io: DeltaIOManager, key: list[str]) -> pl.DataFrame:
    with (
        dg.build_output_context(asset_key=key, definition_metadata={}) as upstream,
        dg.build_input_context(asset_key=key, upstream_output=upstream) as context,
    ):
        return io.load_input(context).collect()


def _write(io: DeltaIOManager, key: list[str], frame: pl.DataFrame) -> None:
    with dg.build_output_context(asset_key=key, run_id=uuid.uuid4().hex) as context:
        io.handle_output(context, frame)


def test_a_gold_sas_reads_gold_and_is_refused_on_bronze(azurite):
    table = f"report_{uuid.uuid4().hex[:8]}"
    _write(_io(azurite), ["gold", table], pl.DataFrame({"store_id": [1, 2], "revenue": [10, 20]}))
    sas = _gold_sas(azurite)
    signature = sas.split("sig=")[1]

    reporting = DeltaIOManager(lake=AzureLakehouse(account_name=ACCOUNT_NAME, sas_token=sas, endpoint=azurite.endpoint))
    assert _load(reporting, ["gold", table])["revenue"].sum() == 30
    with pytest.raises(AzureAccessError) as refused:
        _write(reporting, ["bronze", table], pl.DataFrame({"x": [1]}))
    message = str(refused.value)
    assert "'devstoreaccount1'" in message and "container 'bronze'" in message and "SAS token" in message
    assert signature not in message and sas not in message

    # A per-layer token wins over the shared credential for its layer only.
    scoped = _io(azurite, account_key=WRONG_KEY, layer_sas_tokens={"gold": sas})
    assert _load(scoped, ["gold", table]).height == 2
    with pytest.raises(AzureAccessError, match="container 'bronze'.*account key"):
        _load(scoped, ["bronze", table])


def test_a_wrong_key_and_a_missing_container_fail_fast_with_what_to_fix(azurite):
    daily, _ = _assets(f"t_{uuid.uuid4().hex[:8]}")
    started = time.monotonic()
    result = _materialize([daily], _io(azurite, account_key=WRONG_KEY), partition_key=D1.isoformat(), raise_on_error=False)
    assert not result.success
    message = _step_error(result)
    assert "storage account 'devstoreaccount1'" in message and "container 'bronze'" in message
    assert "AZURE_STORAGE_ACCOUNT_KEY" in message and WRONG_KEY not in message
    assert time.monotonic() - started < 10  # refused credentials are not retried

    with pytest.raises(AzureAccessError) as missing:
        check_access(AzureAccount(ACCOUNT_NAME, account_key=ACCOUNT_KEY, endpoint=azurite.endpoint), "silver")
    message = str(missing.value)
    assert "container 'silver' does not exist in storage account 'devstoreaccount1'" in message
    assert "create-containers" in message and "AZURE_STORAGE_ACCOUNT_NAME" in message and ACCOUNT_KEY not in message

    zone = AzureLandingZone(account_name=ACCOUNT_NAME, account_key=WRONG_KEY, endpoint=azurite.endpoint)
    with pytest.raises(AzureAccessError, match="refused the account key for container 'landing'") as refused:
        zone.list_names("customer")
    assert WRONG_KEY not in str(refused.value)


# -- landing zone -----------------------------------------------------------------------------------


def test_landing_zone_lists_reads_and_fingerprints_blobs(azurite, tmp_path):
    local = tmp_path / "landing"
    (local / "customer").mkdir(parents=True)
    (local / "loyalty").mkdir()
    first = local / "customer" / "customer_20260901_230000.csv"
    first.write_text("customer_id,name\n1,Ada\n")
    (local / "customer" / "customer_20260902_230000.csv").write_text("customer_id,name\n2,Grace\n")
    (local / "customer" / "notes.txt").write_text("not a drop")
    (local / "loyalty" / "loyalty_20260901_230000.csv").write_text("event_id\n7\n")
    zone = AzureLandingZone(account_name=ACCOUNT_NAME, account_key=ACCOUNT_KEY, endpoint=azurite.endpoint)

    assert len(upload_landing(local, zone).uploaded) == 4
    names = dict(zone.list_names("customer"))
    assert sorted(names) == ["customer_20260901_230000.csv", "customer_20260902_230000.csv", "notes.txt"]
    drops = zone.list_drops("customer", D1, D3)
    assert [d.name for d in drops] == ["customer_20260901_230000.csv", "customer_20260902_230000.csv"]
    assert zone.read(drops[0]) == first.read_bytes()
    assert zone.location("customer").startswith("az://landing/customer/ (account devstoreaccount1")

    again = upload_landing(local, zone)
    assert again.uploaded == [] and len(again.skipped) == 4
    assert dict(zone.list_names("customer")) == names

    first.write_text("customer_id,name\n1,Ada Lovelace\n")  # a corrected re-delivery
    assert upload_landing(local, zone).uploaded == ["customer/customer_20260901_230000.csv"]
    after = dict(zone.list_names("customer"))
    assert after["customer_20260901_230000.csv"] != names["customer_20260901_230000.csv"]
    assert after["customer_20260902_230000.csv"] == names["customer_20260902_230000.csv"]
    assert zone.read(drops[0]) == first.read_bytes()

    with pytest.raises(FileNotFoundError, match="customer_20260909_230000.csv"):
        zone.read(Drop(dt.date(2026, 9, 9), "230000", "customer", "customer_20260909_230000.csv"))


def test_the_upload_command_fills_the_landing_container_and_check_names_what_is_missing(azurite, tmp_path, monkeypatch, capsys):
    from retail_lakehouse.azure.__main__ import main

    local = tmp_path / "landing"
    (local / "store").mkdir(parents=True)
    (local / "store" / "store_20260901_000000.csv").write_text("store_id,name\n1,Main\n")
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", ACCOUNT_NAME)
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", ACCOUNT_KEY)
    monkeypatch.setenv("RETAIL_LAKEHOUSE_AZURE_ENDPOINT", azurite.endpoint)

    assert main(["upload", "--from", str(local)]) == 0
    assert main(["upload", "--from", str(local)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("1 uploaded, 0 unchanged") and out[1].startswith("0 uploaded, 1 unchanged")

    assert main(["check"]) == 1
    captured = capsys.readouterr()
    assert "bronze: ok" in captured.out and "container 'silver' does not exist" in captured.err
    assert ACCOUNT_KEY not in captured.out + captured.err


def test_bronze_assets_run_on_azure_storage(azurite, monkeypatch):
    """The project's own bronze assets, unchanged, over the Azure resources built from the environment."""
    from retail_lakehouse.bronze.assets import build_bronze_assets
    from retail_lakehouse.orchestration import build_lakehouse_job, run_range
    from retail_lakehouse.partitions import daily_partitions
    from retail_lakehouse.resources import CardTokenizer
    from retail_lakehouse_tests.azurite import PROJECT_ROOT

    env = {
        "AZURE_STORAGE_ACCOUNT_NAME": ACCOUNT_NAME,
        "AZURE_STORAGE_ACCOUNT_KEY": ACCOUNT_KEY,
        "RETAIL_LAKEHOUSE_AZURE_ENDPOINT": azurite.endpoint,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    resources = build_azure_resources(env)
    # Its own container, so these drops never mix with the landing-zone test's files.
    landing = AzureLandingZone(
        account_name=ACCOUNT_NAME,
        account_key=dg.EnvVar("AZURE_STORAGE_ACCOUNT_KEY"),
        endpoint=azurite.endpoint,
        container="sample-landing",
    )
    upload_landing(PROJECT_ROOT / "data" / "sample" / "landing", landing.process_config_and_initialize())

    defs = dg.Definitions(
        assets=build_bronze_assets(daily_partitions(D1)),
        jobs=[build_lakehouse_job()],
        resources={**resources, "landing": landing, "card_tokenizer": CardTokenizer(key="test-only-key")},
    )
    assert run_range(defs, D1, D3).success
    customers = _read(azurite, "az://bronze/customer")
    assert sorted(customers["drop_date"].unique()) == [D1, D2, D3]
    assert set(customers["_source_file"].str.split("/").list.first()) == {"customer"}


# -- outage -----------------------------------------------------------------------------------------


def test_storage_outage_fails_clearly_keeps_the_log_and_a_rerun_succeeds(tmp_path):
    # Blobs must outlive the restart, so this emulator keeps them on disk.
    az = _start(location=tmp_path / "azurite")
    try:
        ensure_containers(AzureAccount(ACCOUNT_NAME, account_key=ACCOUNT_KEY, endpoint=az.endpoint), CREATED)
        table = "outage"
        daily, _ = _assets(table)
        io = _io(az, retry_timeout_seconds=2, max_attempts=2)
        assert _materialize([daily], io, tags={**range_tags(D1, D2), "batch": "1"}).success

        # A run that passed its preflight, then lost the storage between two writes.
        io.lake.preflight(dg.AssetKey(["bronze", table]), AUDIT_LOG_KEY)
        port = az.port
        az.stop()
        started = time.monotonic()
        with (
            dg.build_output_context(
                asset_key=["bronze", table],
                partition_key=D1.isoformat(),
                asset_partitions_def=DAYS,
                definition_metadata={PARTITION_COLUMN: "day"},
                run_id=uuid.uuid4().hex,
            ) as context,
            pytest.raises(AzureUnavailableError) as failed,
        ):
            io.handle_output(context, pl.DataFrame({"day": [D1], "amount": [9]}))
        assert time.monotonic() - started < 20
        message = str(failed.value)
        assert "storage account 'devstoreaccount1'" in message and "container 'bronze'" in message
        assert "last committed version" in message and ACCOUNT_KEY not in message

        # A new run fails in its preflight, after its retries, with the same kind of message.
        result = _materialize([daily], io, partition_key=D1.isoformat(), raise_on_error=False)
        assert not result.success and "kept failing for container 'bronze'" in _step_error(result)
        zone = AzureLandingZone(account_name=ACCOUNT_NAME, account_key=ACCOUNT_KEY, endpoint=az.endpoint, max_attempts=2)
        with pytest.raises(AzureUnavailableError, match="container 'landing'"):
            zone.list_names("customer")

        az.start()
        assert az.port == port
        uri = f"az://bronze/{table}"
        assert _version(az, uri) == 0
        assert sorted(_read(az, uri)["amount"].unique()) == [1]

        assert _materialize([daily], io, partition_key=D1.isoformat(), tags={"batch": "3"}).success
        assert _version(az, uri) == 1
        rows = _read(az, uri).group_by("day").agg(pl.col("amount").unique()).sort("day")
        assert rows.to_dicts() == [{"day": D1, "amount": [3]}, {"day": D2, "amount": [1]}]
        assert _read(az, f"az://{AUDIT_LOG_KEY.path[0]}/{AUDIT_LOG_KEY.path[1]}").height == 2
    finally:
        az.close()


# -- retries and configuration (no emulator needed) -------------------------------------------------


def _http_error(status: int) -> HttpResponseError:
    err = HttpResponseError(message=f"status {status}")
    err.status_code = status
    return err


def test_transient_errors_are_retried_with_growing_backoff_and_others_fail_fast():
    outcomes = [ServiceRequestError("connection reset"), _http_error(503), _http_error(429), "done"]
    delays: list[float] = []

    def flaky():
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert with_retries(flaky, attempts=5, base_delay=1.0, sleep=delays.append) == "done"
    assert len(delays) == 3
    assert all(0 <= d <= cap for d, cap in zip(delays, (1.0, 2.0, 4.0)))

    calls = []

    def refused():
        calls.append(1)
        raise _http_error(403)

    with pytest.raises(HttpResponseError):
        with_retries(refused, attempts=5, sleep=delays.append)
    assert len(calls) == 1

    with pytest.raises(ServiceRequestError):
        with_retries(lambda: (_ for _ in ()).throw(ServiceRequestError("down")), attempts=3, sleep=lambda _: None)


def test_build_azure_resources_passes_secrets_as_env_var_names(monkeypatch):
    from dagster._core.remote_representation.external_data import RepositorySnap

    env = {
        "AZURE_STORAGE_ACCOUNT_NAME": "devstoreaccount1",
        "AZURE_STORAGE_ACCOUNT_KEY": "shared-key-value",
        "RETAIL_LAKEHOUSE_SAS_TOKEN_GOLD": "sv=2024&sig=gold-signature",
        "RETAIL_LAKEHOUSE_AZURE_ENDPOINT": "http://127.0.0.1:10000/devstoreaccount1",
    }
    resources = build_azure_resources(env)
    assert set(resources) == {"lake", "io_manager", "landing"}

    # What the UI shows (the repository snapshot the webserver reads): variable names, never values.
    snap = RepositorySnap.from_def(dg.Definitions(resources=resources).get_repository_def())
    shown = repr([r.configured_values for r in snap.resources])
    assert "AZURE_STORAGE_ACCOUNT_KEY" in shown and "RETAIL_LAKEHOUSE_SAS_TOKEN_GOLD" in shown
    assert "shared-key-value" not in shown and "gold-signature" not in shown

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with resources["lake"].process_config_and_initialize_cm() as lake:
        gold, bronze = dg.AssetKey(["gold", "t"]), dg.AssetKey(["bronze", "t"])
        assert lake.storage_options(gold)["sas_token"] == "sv=2024&sig=gold-signature"
        assert "account_key" not in lake.storage_options(gold)
        assert lake.storage_options(bronze)["account_key"] == "shared-key-value"
        assert lake.storage_options(bronze)["allow_http"] == "true"
        assert "gold-signature" not in lake.display_uri(gold)
    landing = resources["landing"].process_config_and_initialize()
    assert landing.account().credential_kind == "account key"

    with pytest.raises(SettingsError, match="AZURE_STORAGE_ACCOUNT_NAME"):
        build_azure_resources({})
    with pytest.raises(SettingsError, match="missing AZURE_CLIENT_SECRET"):
        build_azure_resources({"AZURE_STORAGE_ACCOUNT_NAME": "acct", "AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c"})
    with pytest.raises(SettingsError, match="query string"):
        build_azure_resources({"AZURE_STORAGE_ACCOUNT_NAME": "acct", "RETAIL_LAKEHOUSE_AZURE_ENDPOINT": "https://x/?sig=1"})


def test_service_principal_and_ambient_options_for_delta_rs():
    principal = AzureAccount("contosolake", tenant_id="t", client_id="c", client_secret="s3cret")
    assert principal.credential_kind == "service principal"
    assert {k: principal.storage_options()[k] for k in ("tenant_id", "client_id", "client_secret")} == {
        "tenant_id": "t", "client_id": "c", "client_secret": "s3cret",
    }
    assert "s3cret" not in repr(principal)
    assert principal.redact("failed: s3cret ...&sig=abc") == "failed: *** ...&sig=***"
    ambient = AzureAccount("contosolake")
    assert ambient.credential_kind == "ambient identity"
    assert set(ambient.storage_options()) == {"account_name", "retry_timeout"}


def test_delta_rs_errors_are_classified_from_object_store_text():
    from retail_lakehouse.azure.account import translate_delta_error

    account = AzureAccount("contosolake", sas_token="sv=1&sig=abc")
    refused = OSError("Kernel error -> Error performing GET REDACTED in 1.403s - Server returned non-2xx status code\n  403 Forbidden")
    assert isinstance(translate_delta_error(refused, account, "gold", "writing"), AzureAccessError)
    slow = OSError("Error performing GET https://x/gold/t?sig=abc in 2.403s, after 10 retries - HTTP error 503")
    unavailable = translate_delta_error(slow, account, "gold", "writing")
    assert isinstance(unavailable, AzureUnavailableError) and "abc" not in str(unavailable)


def test_a_missing_azurite_install_says_to_run_npm_ci(tmp_path):
    with pytest.raises(AzuriteNotInstalled, match="npm ci"):
        azurite_binary(tmp_path)


def test_errors_are_storage_errors():
    assert issubclass(AzureAccessError, AzureStorageError) and issubclass(AzureUnavailableError, AzureStorageError)
