"""The Azure resources of the code location, built from the SPEC §6 variables."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from retail_lakehouse.azure.account import (
    ACCOUNT_KEY_VARIABLE,
    ACCOUNT_NAME_VARIABLE,
    ENDPOINT_VARIABLE,
    LAYERS,
    SAS_TOKEN_VARIABLE,
    SERVICE_PRINCIPAL_VARIABLES,
    AzureAccount,
)
from retail_lakehouse.azure.lakehouse import AzureLakehouse
from retail_lakehouse.azure.landing import AzureLandingZone
from retail_lakehouse.settings import SettingsError
from retail_lakehouse.storage import DeltaIOManager

# Least privilege per container: a SAS token scoped to one container replaces the shared credential
# for that container only.
LAYER_SAS_VARIABLES: dict[str, str] = {
    container: f"RETAIL_LAKEHOUSE_SAS_TOKEN_{container.upper()}" for container in (*LAYERS, "landing")
}


def build_azure_resources(env: Mapping[str, str]) -> dict[str, object]:
    """`lake`, `io_manager` and `landing` on the storage account, for `RETAIL_LAKEHOUSE_ENV=azure`.

    `env` is `Settings.azure_env`: Settings is the one reader of the environment.

    `env` decides which credential is configured: of a secret variable only its presence counts
    (a caller may pass "set" in place of the value), and the value itself is never copied out. It
    is passed as `dg.EnvVar`, so Dagster reads it from the process environment when a run starts
    and the UI shows only the variable's name. The account name and the endpoint are not secret
    and are shown as values. Per-container SAS tokens: `RETAIL_LAKEHOUSE_SAS_TOKEN_<CONTAINER>`
    (BRONZE, SILVER, GOLD, OPS, LANDING) replace the shared credential for that container.
    """
    name = (env.get(ACCOUNT_NAME_VARIABLE) or "").strip()
    if not name:
        raise SettingsError(f"{ACCOUNT_NAME_VARIABLE} is required when RETAIL_LAKEHOUSE_ENV=azure")
    endpoint = (env.get(ENDPOINT_VARIABLE) or "").strip() or None
    shared: dict[str, object] = {"account_name": name, "endpoint": endpoint}
    if env.get(ACCOUNT_KEY_VARIABLE):
        shared["account_key"] = dg.EnvVar(ACCOUNT_KEY_VARIABLE)
    if env.get(SAS_TOKEN_VARIABLE):
        shared["sas_token"] = dg.EnvVar(SAS_TOKEN_VARIABLE)
    principal = [var for var in SERVICE_PRINCIPAL_VARIABLES if env.get(var)]
    if principal and len(principal) < len(SERVICE_PRINCIPAL_VARIABLES):
        missing = [var for var in SERVICE_PRINCIPAL_VARIABLES if var not in principal]
        raise SettingsError(
            f"a service principal needs {', '.join(SERVICE_PRINCIPAL_VARIABLES)}; missing {', '.join(missing)}"
        )
    if principal:
        tenant, client, secret = SERVICE_PRINCIPAL_VARIABLES
        shared.update(tenant_id=dg.EnvVar(tenant), client_id=dg.EnvVar(client), client_secret=dg.EnvVar(secret))
    try:
        # Malformed names and endpoints are configuration errors: report them before any run.
        AzureAccount(name=name, endpoint=endpoint)
    except ValueError as err:
        raise SettingsError(str(err)) from None

    layer_tokens = {layer: dg.EnvVar(LAYER_SAS_VARIABLES[layer]) for layer in LAYERS if env.get(LAYER_SAS_VARIABLES[layer])}
    landing = dict(shared)
    if env.get(LAYER_SAS_VARIABLES["landing"]):
        landing = {"account_name": name, "endpoint": endpoint, "sas_token": dg.EnvVar(LAYER_SAS_VARIABLES["landing"])}
    lake = AzureLakehouse(**shared, layer_sas_tokens=layer_tokens)
    return {"lake": lake, "io_manager": DeltaIOManager(lake=lake), "landing": AzureLandingZone(**landing)}
