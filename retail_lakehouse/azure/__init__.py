"""Azure Data Lake Storage Gen2: the lakehouse's Delta tables and the landing zone on a storage account.

One container per layer (`bronze`, `silver`, `gold`, and `ops` for the audit log) so that each layer
can get its own access rights (SPEC §3), plus the `landing` container for raw drops (SPEC §2).

Which client talks to which endpoint. Azurite, the emulator the tests run against, serves only the
Blob endpoint; a real ADLS Gen2 account serves both. Every call here therefore works on both:

| what | client | endpoint |
|---|---|---|
| Delta tables: read, write, list `_delta_log` | delta-rs / polars (object_store) | Blob |
| preflight `check_access` (list one blob) | azure-storage-blob `ContainerClient.list_blobs` | Blob |
| landing `list_files` (list by name prefix) | azure-storage-blob `ContainerClient.list_blobs` | Blob |
| landing `read` (download) | azure-storage-file-datalake `DataLakeFileClient.download_file` | Blob (the SDK routes downloads there) |
| `upload_landing` (upload) | azure-storage-blob `BlobClient.upload_blob` | Blob |
| `ensure_containers` (create file systems) | azure-storage-file-datalake `FileSystemClient.create_file_system` | Blob (the SDK routes it there) |

The DFS-only calls (`create_directory`, `create_file`, `upload_data`, `get_paths`, `rename_file`)
answer 400 on Azurite, so they are not used. Container properties are not used either: a container
SAS may list and read blobs but not read its container's properties, so the preflight lists instead,
which is also exactly the permission delta-rs needs.

Credentials, most specific first: a per-layer SAS token (`layer_sas_tokens`), the account key, the
shared SAS token, a service principal (tenant/client/secret), else the ambient identity (delta-rs'
own managed-identity/workload-identity chain; `azure-identity`'s `DefaultAzureCredential` for the
SDK calls). Both resources take their account fields from `AzureCredentials`; secret fields are
meant to be given as `dg.EnvVar`, so the UI shows variable names.
"""

from retail_lakehouse.azure.account import (
    LAYERS,
    AzureAccessError,
    AzureAccount,
    AzureStorageError,
    AzureUnavailableError,
    check_access,
    ensure_containers,
    is_transient,
    with_retries,
)
from retail_lakehouse.azure.credentials import AzureCredentials
from retail_lakehouse.azure.lakehouse import AzureLakehouse
from retail_lakehouse.azure.landing import AzureLandingZone, UploadSummary, upload_landing
from retail_lakehouse.azure.resources import LAYER_SAS_VARIABLES, build_azure_resources

__all__ = [
    "LAYERS",
    "LAYER_SAS_VARIABLES",
    "AzureAccessError",
    "AzureAccount",
    "AzureCredentials",
    "AzureLakehouse",
    "AzureLandingZone",
    "AzureStorageError",
    "AzureUnavailableError",
    "UploadSummary",
    "build_azure_resources",
    "check_access",
    "ensure_containers",
    "is_transient",
    "upload_landing",
    "with_retries",
]
