"""`python -m retail_lakehouse.azure {upload,create-containers,check}` for the account of the settings.

    upload --from data/landing     copy generated drops to the landing container (skips unchanged)
    create-containers              create bronze, silver, gold, ops and landing if missing
    check                          verify every container exists and its credential is accepted
"""

from __future__ import annotations

import argparse
import contextlib
import sys

from retail_lakehouse.azure.account import LAYERS, AzureStorageError, check_access, ensure_containers
from retail_lakehouse.azure.landing import upload_landing
from retail_lakehouse.azure.resources import build_azure_resources
from retail_lakehouse.settings import Settings, SettingsError


@contextlib.contextmanager
def _resources():
    # The same resources a run gets, from the same settings; resolving their configuration turns
    # the EnvVar fields into values, as a run would (and tears them down as a run does).
    built = build_azure_resources(Settings.from_env().azure_env)
    with built["lake"].process_config_and_initialize_cm() as lake, built["landing"].process_config_and_initialize_cm() as landing:
        yield lake, landing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m retail_lakehouse.azure", description="Set up and check the Azure storage account of RETAIL_LAKEHOUSE_ENV=azure.")
    commands = parser.add_subparsers(dest="command", required=True)
    upload = commands.add_parser("upload", help="upload a local landing folder to the landing container")
    upload.add_argument("--from", dest="source", default="data/landing", help="local landing folder")
    upload.add_argument("--no-create", action="store_true", help="fail instead of creating the container")
    commands.add_parser("create-containers", help="create the layer containers and the landing container")
    commands.add_parser("check", help="check that every container exists and accepts its credential")
    args = parser.parse_args(argv)

    try:
        with _resources() as (lake, landing):
            return _run(args, lake, landing)
    except (AzureStorageError, SettingsError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, lake, landing) -> int:
    if args.command == "upload":
        summary = upload_landing(args.source, landing, create_container=not args.no_create)
        print(
            f"{len(summary.uploaded)} uploaded, {len(summary.skipped)} unchanged -> "
            f"az://{landing.container}/ (account {landing.account_name})"
        )
    elif args.command == "create-containers":
        created = ensure_containers(lake.shared_account(), LAYERS)
        created += ensure_containers(landing.account(), [landing.container])
        print(f"created: {', '.join(created) or 'none (all exist)'}")
    else:
        for layer in LAYERS:
            check_access(lake.account(layer), layer)
            print(f"{layer}: ok")
        check_access(landing.account(), landing.container)
        print(f"{landing.container}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
