"""The storage account and its shared credential, as configuration: declared once, here.

Both Azure resources (`AzureLakehouse` for the Delta tables, `AzureLandingZone` for the drops)
derive from `AzureCredentials`, so the fields, their descriptions and how they become an
`AzureAccount` cannot drift apart.
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from retail_lakehouse.azure.account import AzureAccount


class AzureCredentials(dg.ConfigurableResource):
    """A storage account and the credential shared by its containers.

    Give secret fields as `dg.EnvVar(...)`: the UI then shows the variable's name, not its value.
    """

    account_name: str = Field(description="Storage account name (AZURE_STORAGE_ACCOUNT_NAME).")
    account_key: str | None = Field(default=None, description="Shared key; give it as an EnvVar.")
    sas_token: str | None = Field(default=None, description="Shared SAS token; give it as an EnvVar.")
    tenant_id: str | None = Field(default=None, description="Service principal tenant.")
    client_id: str | None = Field(default=None, description="Service principal client id.")
    client_secret: str | None = Field(default=None, description="Service principal secret; give it as an EnvVar.")
    endpoint: str | None = Field(default=None, description="Blob endpoint override (the emulator, sovereign clouds).")
    max_attempts: int = Field(default=5, description="Attempts of each SDK call (access check, listing, download) on transient errors.")

    def shared_account(self, **options: object) -> AzureAccount:
        """The account with the shared credential (account key, SAS, service principal or ambient);
        `options` are further `AzureAccount` fields such as `retry_timeout_seconds`."""
        return AzureAccount(
            name=self.account_name,
            account_key=self.account_key or None,
            sas_token=self.sas_token or None,
            tenant_id=self.tenant_id or None,
            client_id=self.client_id or None,
            client_secret=self.client_secret or None,
            endpoint=self.endpoint or None,
            max_attempts=self.max_attempts,
            **options,
        )
