"""The deployment in docker/: compose services, the instance and the workspace they share.

No Docker daemon and no Postgres are needed: the compose file is read as YAML (and checked by
`docker compose config` where the Compose plugin is installed), the instance file is validated with
Dagster's own instance schema and each configured class's own config schema, and the image's entrypoint
script is taken out of the Dockerfile and run with `sh`.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from retail_lakehouse import settings as settings_module
from retail_lakehouse_tests.azurite import ACCOUNT_KEY as AZURITE_WELL_KNOWN_KEY

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
COMPOSE_FILE = DOCKER / "compose.yaml"
INSTANCE_FILE = DOCKER / "dagster.yaml"
WORKSPACE_FILE = DOCKER / "workspace.yaml"
DOCKERFILE = DOCKER / "Dockerfile"
ENV_EXAMPLE = DOCKER / "deploy.env.example"

SERVICES = {"postgres", "azurite", "code", "webserver", "daemon"}
# Names of variables whose values are credentials; *_FILE variables hold a path, not the secret.
# Webhook, SQL and Spark Connect URLs can carry a token or a password.
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$|_ACCOUNT_KEY|ACCOUNTS|POSTGRES_URL|SQL_URL|WEBHOOK|SPARK_REMOTE")
# `$${X}` is a literal `${X}` for the container's shell, not a reference.
REFERENCE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}")
# A literal that looks like key material: long runs of base64 or hex characters.
KEY_MATERIAL = re.compile(r"[A-Za-z0-9+/]{40,}={0,2}")


def _compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def _service(name: str) -> dict:
    return _compose()["services"][name]


def _environment(service: dict) -> dict[str, str | None]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {k: (None if v is None else str(v)) for k, v in env.items()}


def _option(command: list[str], *flags: str) -> str:
    for i, arg in enumerate(command):
        if arg in flags:
            return command[i + 1]
    raise AssertionError(f"none of {flags} in {command}")


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]


def _dockerfile_env() -> dict[str, str]:
    env = {}
    for instruction, args in _dockerfile_instructions():
        if instruction == "ENV":
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def _expand(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env[m.group(1) or m.group(2)], value)


def _copies() -> dict[str, str]:
    """Source -> destination (variables expanded) of every COPY in the Dockerfile."""
    env, out = _dockerfile_env(), {}
    for instruction, args in _dockerfile_instructions():
        if instruction == "COPY":
            parts = [p for p in shlex.split(args) if not p.startswith("--")]
            for source in parts[:-1]:
                out[source] = _expand(parts[-1], env)
    return out


def _example_variables() -> tuple[dict[str, str], set[str]]:
    """The example's assignments, and every variable it names (commented-out ones included)."""
    assigned, named = {}, set()
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
        if not match:
            continue
        named.add(match.group(2))
        if not match.group(1):
            assigned[match.group(2)] = match.group(3)
    return assigned, named


def _strings(node: object):
    """Every string in a parsed YAML document, keys included (comments are not part of it)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)
    elif isinstance(node, str):
        yield node


def _compose_variables() -> set[str]:
    """Every variable the compose file reads from the env file: ${VAR} references, entries
    passed through without a value, and the sources of secrets."""
    compose = _compose()
    names = {name for text in _strings(compose) for name in REFERENCE.findall(text)}
    for service in compose["services"].values():
        names |= {k for k, v in _environment(service).items() if v is None}
    names |= {s["environment"] for s in compose.get("secrets", {}).values() if "environment" in s}
    return names


def test_compose_runs_the_five_services_from_pinned_images_and_one_built_image():
    services = _compose()["services"]
    assert set(services) == SERVICES
    assert services["postgres"]["image"] == "postgres:15"
    # Azurite is built from the lockfile the tests install, so the stack runs the release they pass on.
    azurite = services["azurite"]
    assert (ROOT / azurite["build"]["dockerfile"]).resolve() == DOCKER / "azurite.Dockerfile"
    assert "COPY package.json package-lock.json" in (DOCKER / "azurite.Dockerfile").read_text()
    assert json.loads((ROOT / "package-lock.json").read_text())["packages"]["node_modules/azurite"]["version"] == azurite["image"].rsplit(":", 1)[1] == "3.37.0"

    build = services["code"]["build"]
    assert (DOCKER / build["context"]).resolve() == ROOT
    assert (ROOT / build["dockerfile"]).resolve() == DOCKERFILE
    image = services["code"]["image"]
    for name in ("webserver", "daemon"):
        assert services[name]["image"] == image, f"{name} must run the image the code server runs"
        assert "build" not in services[name]
        # Never pulled: a registry image of the same name must not stand in for the built one.
        assert services[name]["pull_policy"] == "never"


def test_each_service_runs_its_role():
    services = _compose()["services"]
    code = services["code"]["command"]
    assert code[:3] == ["dagster", "code-server", "start"]
    assert _option(code, "-h", "--host") == "0.0.0.0"
    assert _option(code, "-m", "--module-name") == "retail_lakehouse.definitions"
    assert _option(code, "-a", "--attribute") == "defs"

    workspace_in_image = _copies()["docker/workspace.yaml"]
    webserver = services["webserver"]["command"]
    assert webserver[0] == "dagster-webserver"
    assert _option(webserver, "-w", "--workspace") == workspace_in_image
    daemon = services["daemon"]["command"]
    assert daemon[:2] == ["dagster-daemon", "run"]
    assert _option(daemon, "-w", "--workspace") == workspace_in_image

    azurite = services["azurite"]["command"]
    assert azurite[0] == "azurite-blob", "Azurite serves the Blob endpoint only; the project calls no other"


def test_only_the_webserver_is_published_and_only_on_loopback():
    services = _compose()["services"]
    for name, service in services.items():
        assert service.get("network_mode") != "host", f"{name} must stay on the compose network"
        if name != "webserver":
            assert "ports" not in service, f"{name} must not be published on the host"
    ports = services["webserver"]["ports"]
    assert ports, "the webserver is the one published service"
    for port in ports:
        if isinstance(port, dict):
            host_ip, published, target = port.get("host_ip"), str(port.get("published")), str(port["target"])
        else:
            host_ip, published, target = (str(port).split(":") + [None, None])[:3]
        assert host_ip == "127.0.0.1", f"published as {port!r}: bind the host side to 127.0.0.1 only"
        assert (published, target) == ("3000", "3000")
    assert _option(services["webserver"]["command"], "-p", "--port") == "3000"


def test_named_volumes_are_declared_used_and_mounted_where_each_service_writes():
    compose = _compose()
    declared = set(compose["volumes"])
    mounts: dict[str, dict[str, str]] = {}
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source, target = (volume["source"], volume["target"]) if isinstance(volume, dict) else volume.split(":")[:2]
            assert not source.startswith((".", "/")), f"{name} bind-mounts {source}: the deployment uses named volumes"
            mounts.setdefault(name, {})[source] = target
    used = {source for by_service in mounts.values() for source in by_service}
    assert used == declared, f"declared but unused: {declared - used}; used but undeclared: {used - declared}"

    assert mounts["postgres"]["postgres-data"] == "/var/lib/postgresql/data"
    azurite = compose["services"]["azurite"]["command"]
    assert mounts["azurite"]["azurite-data"] == _option(azurite, "--location", "-l")
    code_env = _environment(compose["services"]["code"])
    assert mounts["code"]["lakehouse"] == code_env["RETAIL_LAKEHOUSE_LAKE_ROOT"]
    assert mounts["code"]["landing"] == code_env["RETAIL_LAKEHOUSE_LANDING_ROOT"]
    # The code server's runs write compute logs under DAGSTER_HOME/storage; the webserver shows them.
    storage = _dockerfile_env()["DAGSTER_HOME"] + "/storage"
    assert mounts["code"]["dagster-storage"] == storage
    assert mounts["webserver"]["dagster-storage"] == storage


def test_compose_holds_no_literal_secret():
    compose = _compose()
    text = COMPOSE_FILE.read_text()
    assert AZURITE_WELL_KNOWN_KEY not in text
    assert not KEY_MATERIAL.search(text), "key material written into compose.yaml"
    for name, service in compose["services"].items():
        for key, value in _environment(service).items():
            if key.endswith("_FILE") or not SECRET_NAME.search(key):
                continue
            assert value is None or REFERENCE.search(value), f"{name}: {key} is a literal; read it from the env file"
    # A credential inside a composite value must itself be a reference.
    url = _environment(compose["services"]["code"])["DAGSTER_POSTGRES_URL"]
    assert re.fullmatch(r"postgresql\+psycopg2://\$\{POSTGRES_USER[^}]*\}:\$\{POSTGRES_PASSWORD[^}]*\}@postgres:5432/\$\{POSTGRES_DB[^}]*\}", url), url
    accounts = _environment(compose["services"]["azurite"])["AZURITE_ACCOUNTS"]
    assert re.fullmatch(r"\$\{AZURE_STORAGE_ACCOUNT_NAME[^}]*\}:\$\{AZURE_STORAGE_ACCOUNT_KEY[^}]*\}", accounts), accounts
    for secret in compose["secrets"].values():
        assert set(secret) == {"environment"}, "a secret's value comes from the env file, never inline"


def test_the_card_token_key_reaches_the_code_server_alone_as_a_docker_secret():
    compose = _compose()
    assert compose["secrets"]["card_token_key"] == {"environment": "RETAIL_LAKEHOUSE_TOKEN_KEY"}
    for name, service in compose["services"].items():
        assert "RETAIL_LAKEHOUSE_TOKEN_KEY" not in _environment(service), f"{name} gets the key as a variable"
        assert bool(service.get("secrets")) == (name == "code"), f"{name}: only the code server holds the key"
    assert compose["services"]["code"]["secrets"] == ["card_token_key"]
    assert _environment(compose["services"]["code"])["RETAIL_LAKEHOUSE_TOKEN_KEY_FILE"] == "/run/secrets/card_token_key"


def test_webserver_and_daemon_get_the_instance_url_and_no_credential():
    services = _compose()["services"]
    url = _environment(services["code"])["DAGSTER_POSTGRES_URL"]
    assert url.startswith("postgresql+psycopg2://"), "with SQLAlchemy 2.1 a plain postgresql:// picks psycopg 3"
    for name in ("webserver", "daemon"):
        assert _environment(services[name]) == {"DAGSTER_POSTGRES_URL": url}
        assert "env_file" not in services[name] and "secrets" not in services[name]


def test_the_code_server_gets_every_setting_the_settings_read():
    source = Path(settings_module.__file__).read_text()
    read = set(re.findall(r"env\.get\(\"([A-Z][A-Z0-9_]*)\"", source))
    # Names kept in module constants (`env.get(SQL_URL_VARIABLE)`).
    read |= {getattr(settings_module, constant) for constant in re.findall(r"env\.get\(([A-Z][A-Z0-9_]*)\)", source)}
    read |= set(settings_module.AZURE_PUBLIC_VARIABLES) | set(settings_module.AZURE_SECRET_VARIABLES)
    # The key arrives as a secret file; XDG_CONFIG_HOME only locates the local key file it replaces.
    expected = read - {"RETAIL_LAKEHOUSE_TOKEN_KEY", "XDG_CONFIG_HOME"}
    assert "RETAIL_LAKEHOUSE_ENV" in expected and "AZURE_STORAGE_ACCOUNT_KEY" in expected
    code_env = _environment(_service("code"))
    assert expected <= set(code_env), f"not passed to the code server: {sorted(expected - set(code_env))}"
    for name in settings_module.AZURE_SECRET_VARIABLES:
        # Passed only when set: an empty AZURE_* variable is still read by delta-rs as a credential.
        assert code_env[name] is None, f"{name} must be passed through without a default"


def test_the_env_example_names_every_variable_with_placeholders_only():
    assigned, named = _example_variables()
    used = _compose_variables()
    assert used <= named, f"not in deploy.env.example: {sorted(used - named)}"
    assert named - used <= {"COMPOSE_PROFILES"}, f"named in the example, read by nothing: {sorted(named - used - {'COMPOSE_PROFILES'})}"
    assert "azurite" in assigned["COMPOSE_PROFILES"].split(","), "the default stack runs on Azurite"
    assert assigned["RETAIL_LAKEHOUSE_ENV"] == "azure"
    assert assigned["RETAIL_LAKEHOUSE_AZURE_ENDPOINT"] == f"http://azurite:10000/{assigned['AZURE_STORAGE_ACCOUNT_NAME']}"
    for name in named:
        if SECRET_NAME.search(name):
            value = assigned.get(name)
            assert value is None or value.startswith("change-me"), f"{name}={value!r} in the example is not a placeholder"
    text = ENV_EXAMPLE.read_text()
    assert AZURITE_WELL_KNOWN_KEY not in text
    assert not KEY_MATERIAL.search(text)


CONFIGURABLE_SECTIONS = ("run_storage", "event_log_storage", "schedule_storage", "run_launcher", "run_coordinator")


def _configured_classes(config: dict) -> dict[str, tuple[type, dict]]:
    """Each configurable section's class and its config processed by that class's own schema:
    what `ConfigurableClassData.rehydrate` checks before it builds the object (building a
    Postgres storage would connect to the database)."""
    from dagster._config import process_config, resolve_to_config_type
    from dagster._core.errors import DagsterInvalidConfigError
    from dagster._serdes import ConfigurableClassData

    out = {}
    for section in CONFIGURABLE_SECTIONS:
        entry = config[section]
        data = ConfigurableClassData(entry["module"], entry["class"], yaml.safe_dump(entry.get("config") or {}))
        cls = getattr(importlib.import_module(data.module_name), data.class_name)
        result = process_config(resolve_to_config_type(cls.config_type()), data.config_dict)
        if not result.success:
            raise DagsterInvalidConfigError(f"{section}: {entry['module']}.{entry['class']}", result.errors, data.config_dict)
        out[section] = (cls, result.value)
    return out


def _instance_dir(tmp_path: Path, text: str | None = None) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(INSTANCE_FILE.read_text() if text is None else text)
    return home


def test_the_instance_file_is_valid_dagster_config_on_postgres(tmp_path, monkeypatch):
    from dagster._core.instance.config import dagster_instance_config
    from dagster._core.launcher import DefaultRunLauncher
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster._core.storage.event_log.base import EventLogStorage
    from dagster._core.storage.runs.base import RunStorage
    from dagster._core.storage.schedules.base import ScheduleStorage

    url = "postgresql+psycopg2://dagster:not-a-password@postgres.invalid:5432/dagster"
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", url)
    config, custom_class = dagster_instance_config(str(_instance_dir(tmp_path)))
    assert custom_class is None
    classes = _configured_classes(config)

    bases = {"run_storage": RunStorage, "event_log_storage": EventLogStorage, "schedule_storage": ScheduleStorage}
    for section, base in bases.items():
        storage_class, resolved = classes[section]
        assert storage_class.__module__.startswith("dagster_postgres."), f"{section} is not dagster_postgres's"
        assert issubclass(storage_class, base)
        # The URL is read from DAGSTER_POSTGRES_URL when the storage is built, not written here.
        assert config[section]["config"] == {"postgres_url": {"env": "DAGSTER_POSTGRES_URL"}}
        assert resolved["postgres_url"] == url

    assert classes["run_launcher"][0] is DefaultRunLauncher
    coordinator_class, coordinator_config = classes["run_coordinator"]
    assert coordinator_class is QueuedRunCoordinator
    assert coordinator_config["max_concurrent_runs"] == 1
    assert config["run_monitoring"]["enabled"] is True

    # Loadable on the host as well as in the image: no absolute (container) path in it.
    assert not [s for s in _strings(config) if s.startswith("/")]


def test_the_instance_ref_sent_to_run_workers_reads_the_url_from_their_environment(tmp_path, monkeypatch):
    # Why the code server needs DAGSTER_POSTGRES_URL too: the instance ref the launcher passes to
    # the run worker it starts carries the variable's name, which the worker resolves itself.
    from dagster._core.instance.ref import InstanceRef

    monkeypatch.setenv("DAGSTER_POSTGRES_URL", "postgresql+psycopg2://u:p@h.invalid:5432/d")
    ref = InstanceRef.from_dir(str(_instance_dir(tmp_path)))
    for data in (ref.run_storage_data, ref.event_storage_data, ref.schedule_storage_data):
        assert yaml.safe_load(data.config_yaml) == {"postgres_url": {"env": "DAGSTER_POSTGRES_URL"}}
    assert "DAGSTER_POSTGRES_URL" in _environment(_service("code"))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("schedule_storage:", "schedule_storag:"),
        ("  enabled: true\n  start_timeout_seconds", "  enabled: maybe\n  start_timeout_seconds"),
        ("max_concurrent_runs: 1", "max_concurrent_runs: one"),
        ("class: PostgresRunStorage\n  config:\n    postgres_url:", "class: PostgresRunStorage\n  config:\n    postgres_uri:"),
    ],
)
def test_the_instance_validation_rejects_a_broken_file(tmp_path, monkeypatch, old, new):
    from dagster._core.errors import DagsterInvalidConfigError
    from dagster._core.instance.config import dagster_instance_config

    monkeypatch.setenv("DAGSTER_POSTGRES_URL", "postgresql+psycopg2://u:p@h.invalid:5432/d")
    text = INSTANCE_FILE.read_text()
    assert text.count(old) == 1
    with pytest.raises(DagsterInvalidConfigError):
        config, _ = dagster_instance_config(str(_instance_dir(tmp_path, text.replace(old, new))))
        _configured_classes(config)


def test_the_workspace_loads_the_code_service_on_the_port_it_serves():
    from dagster._core.workspace.config_schema import ensure_workspace_config

    workspace = ensure_workspace_config(yaml.safe_load(WORKSPACE_FILE.read_text()), str(WORKSPACE_FILE))
    (entry,) = workspace["load_from"]
    grpc = entry["grpc_server"]
    code = _service("code")
    assert grpc["host"] == "code" and grpc["host"] in _compose()["services"]
    port = _option(code["command"], "-p", "--port")
    assert str(grpc["port"]) == port
    assert [str(p) for p in code["expose"]] == [port]
    assert _option(code["healthcheck"]["test"], "-p", "--port") == port
    location = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["dagster"]["code_location_name"]
    assert grpc["location_name"] == location == _option(code["command"], "--location-name")
    for name in ("webserver", "daemon"):
        assert _service(name)["depends_on"]["code"]["condition"] == "service_healthy"


def test_the_image_installs_the_project_as_a_user_with_the_deploy_instance():
    instructions = _dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    runs = " ".join(args for instruction, args in instructions if instruction == "RUN")
    assert "default-jre-headless" in runs, "pyspark needs a JVM"
    assert re.search(r"pip install [^&]*--no-deps /tmp/build", runs)

    copies = _copies()
    home = _dockerfile_env()["DAGSTER_HOME"]
    assert copies["docker/dagster.yaml"] == f"{home}/dagster.yaml"
    assert {"pyproject.toml", "README.md", "retail_lakehouse"} <= set(copies)
    # Not the demo's SQLite instance, nor the whole work tree (.venv, data, a deploy env file).
    assert not {"dagster.yaml", "workspace.yaml", ".", "./"} & set(copies)

    users = [args for instruction, args in instructions if instruction == "USER"]
    assert users and users[-1] not in ("root", "0"), "the services run as a non-root user"
    assert re.search(rf"useradd .*\b{re.escape(users[-1])}\b", runs)
    for instruction, args in instructions:
        if instruction in ("ENV", "ARG"):
            names = [pair.partition("=")[0] for pair in shlex.split(args)]
            assert not [n for n in names if SECRET_NAME.search(n)], f"{instruction} {args}: a secret built into the image"


def _entrypoint(tmp_path: Path) -> Path:
    """The entrypoint script exactly as the Dockerfile's RUN writes it, written under tmp_path."""
    target = "/usr/local/bin/retail-lakehouse-entrypoint"
    (writer,) = [args for instruction, args in _dockerfile_instructions() if instruction == "RUN" and f"> {target}" in args]
    script = tmp_path / "entrypoint"
    subprocess.run(["sh", "-c", writer.split(f"> {target}")[0] + f"> {shlex.quote(str(script))}"], check=True)
    entrypoints = [args for instruction, args in _dockerfile_instructions() if instruction == "ENTRYPOINT"]
    assert entrypoints and json.loads(entrypoints[-1]) == [Path(target).name]
    return script


def _env_of(script: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(script), "env"], env={"PATH": os.environ["PATH"], **env}, capture_output=True, text=True)


def test_the_entrypoint_exports_the_key_from_the_secret_file_without_its_newline(tmp_path):
    script = _entrypoint(tmp_path)
    key_file = tmp_path / "card_token_key"
    key_file.write_text("k3y-from-secret\n")
    out = _env_of(script, {"RETAIL_LAKEHOUSE_TOKEN_KEY_FILE": str(key_file)})
    assert out.returncode == 0, out.stderr
    assert "RETAIL_LAKEHOUSE_TOKEN_KEY=k3y-from-secret" in out.stdout.splitlines()

    # A key set directly wins; a missing secret file stops the container instead of starting keyless.
    out = _env_of(script, {"RETAIL_LAKEHOUSE_TOKEN_KEY": "direct", "RETAIL_LAKEHOUSE_TOKEN_KEY_FILE": str(key_file)})
    assert "RETAIL_LAKEHOUSE_TOKEN_KEY=direct" in out.stdout.splitlines()
    out = _env_of(script, {"RETAIL_LAKEHOUSE_TOKEN_KEY_FILE": str(tmp_path / "absent")})
    assert out.returncode != 0 and "RETAIL_LAKEHOUSE_TOKEN_KEY=" not in out.stdout


def _docker_compose() -> list[str] | None:
    if shutil.which("docker") is None:
        return None
    try:
        found = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return None
    return ["docker", "compose"] if found.returncode == 0 else None


def _compose_config(compose: list[str], env_file: Path) -> subprocess.CompletedProcess:
    # Without the deployment's variables of the caller's shell, which would override the env file,
    # nor the caller's COMPOSE_* settings (profiles, project name, extra files).
    env = {k: v for k, v in os.environ.items() if k not in _compose_variables() and not k.startswith("COMPOSE_")}
    return subprocess.run(
        [*compose, "-f", str(COMPOSE_FILE), "--env-file", str(env_file), "config", "--format", "json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


def test_docker_compose_config_accepts_the_file_with_the_example_env(tmp_path):
    compose = _docker_compose()
    if compose is None:
        pytest.skip("the Docker Compose plugin is not installed (`docker compose version` fails): the YAML tests above still ran")
    out = _compose_config(compose, ENV_EXAMPLE)
    assert out.returncode == 0, out.stderr
    resolved = json.loads(out.stdout)
    assert set(resolved["services"]) == SERVICES
    (port,) = resolved["services"]["webserver"]["ports"]
    assert (port["host_ip"], str(port["published"]), port["target"]) == ("127.0.0.1", "3000", 3000)
    for name in SERVICES - {"webserver"}:
        assert not resolved["services"][name].get("ports")
    assigned, _ = _example_variables()
    code_env = resolved["services"]["code"]["environment"]
    assert code_env["DAGSTER_POSTGRES_URL"] == (
        f"postgresql+psycopg2://{assigned['POSTGRES_USER']}:{assigned['POSTGRES_PASSWORD']}@postgres:5432/{assigned['POSTGRES_DB']}"
    )
    assert code_env.get("AZURE_STORAGE_SAS_TOKEN") is None, "an unset optional credential must stay unset"

    without_password = tmp_path / "deploy.env"
    without_password.write_text("".join(
        line for line in ENV_EXAMPLE.read_text().splitlines(keepends=True) if not line.startswith("POSTGRES_PASSWORD=")
    ))
    out = _compose_config(compose, without_password)
    assert out.returncode != 0 and "POSTGRES_PASSWORD" in out.stderr
