"""The deployment recipes in deploy/ are valid as written: the Compose files follow the
Compose Specification, the systemd units pass systemd's own check, and every command and
setting they name exists in this jobport."""

from __future__ import annotations

import copy
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from conftest import ROOT

DEPLOY = ROOT / "deploy"
UNITS = DEPLOY / "systemd"
COMPOSE_FILES = [DEPLOY / "compose.yaml", DEPLOY / "compose.rabbitmq.yaml"]
ENV_EXAMPLE = DEPLOY / "jobport.env.example"
# The official schema, vendored (tests/data/README.md says from where).
COMPOSE_SCHEMA = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text())
JOBPORT = str(Path(sys.executable).with_name("jobport"))
INSTALLED_AT = "/opt/jobport/bin/jobport"  # where the units expect the virtualenv's command

SETTING_NAME = re.compile(r"\bJOBPORT_[A-Z0-9_]+\b")


def compose_problems(document: Any) -> list[str]:
    """What the Compose Specification refuses in `document`, one line each."""
    validator = jsonschema.Draft7Validator(COMPOSE_SCHEMA)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def load_compose(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict), f"{path.name} is not a mapping"
    return document


def merged_services() -> dict[str, dict[str, Any]]:
    """compose.yaml's services with the RabbitMQ override laid over them, as Compose merges
    maps (environment, depends_on) key by key."""
    services: dict[str, dict[str, Any]] = {}
    for path in COMPOSE_FILES:
        for name, service in load_compose(path)["services"].items():
            into = services.setdefault(name, {})
            for key, value in service.items():
                if isinstance(value, dict) and isinstance(into.get(key), dict):
                    into[key] = {**into[key], **value}
                else:
                    into[key] = value
    return services


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_files_follow_the_compose_specification(path: Path) -> None:
    assert compose_problems(load_compose(path)) == []


@pytest.mark.parametrize(
    "breakage",
    ["misspelt key", "unknown dependency condition", "ports not a list", "no services map"],
)
def test_a_broken_compose_file_is_refused(breakage: str) -> None:
    document = copy.deepcopy(load_compose(DEPLOY / "compose.yaml"))
    services = document["services"]
    if breakage == "misspelt key":
        services["worker"]["comand"] = services["worker"].pop("command")
    elif breakage == "unknown dependency condition":
        services["api"]["depends_on"]["migrate"]["condition"] = "service_done"
    elif breakage == "ports not a list":
        services["api"]["ports"] = {"8080": 8080}
    else:
        document["services"] = ["api", "worker"]
    assert compose_problems(document), f"a compose file with a {breakage} passed"


def test_compose_roles_are_wired_as_the_readme_says() -> None:
    services = merged_services()
    assert {"postgres", "redis", "migrate", "api", "worker", "scheduler", "rabbitmq"} <= set(
        services
    )
    for name, service in services.items():
        for needed in service.get("depends_on", {}):
            assert needed in services, f"{name} depends on {needed}, which is not a service"
    for role in ("api", "worker", "scheduler"):
        assert services[role]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
    # `--scale worker=3` needs a worker without a fixed name or a published port.
    assert "container_name" not in services["worker"] and "ports" not in services["worker"]
    api_env = services["api"]["environment"]
    assert api_env["JOBPORT_EXECUTOR"] == "celery"
    assert api_env["JOBPORT_SCHEDULER_ENABLED"] == "false"
    assert api_env["JOBPORT_RATE_LIMIT_STORAGE_URL"].startswith("redis://redis:")
    assert api_env["JOBPORT_BROKER_URL"].startswith("amqp://")  # the override's broker
    assert services["worker"]["environment"]["JOBPORT_BROKER_URL"].startswith("amqp://")
    base = load_compose(DEPLOY / "compose.yaml")["services"]
    assert base["worker"]["environment"]["JOBPORT_BROKER_URL"] == "redis://redis:6379/0"
    assert "/readyz" in " ".join(base["api"]["healthcheck"]["test"])


def compose_command() -> list[str] | None:
    """Docker Compose v2, as the docker plugin or standalone; None where there is neither."""
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    if standalone:
        said = subprocess.run([standalone, "version"], capture_output=True, text=True).stdout
        if re.search(r"\bv2\.", said):  # 1.x predates the Compose Specification
            return [standalone]
    return None


def test_docker_compose_accepts_the_compose_files(tmp_path: Path) -> None:
    """`docker compose config` where Compose v2 is installed (it needs no engine); the schema
    tests above hold the files to the same specification everywhere else."""
    compose = compose_command()
    if compose is None:
        pytest.skip("no Docker Compose v2 here; the Compose Specification schema checks the files")
    copy_dir = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy_dir)
    shutil.copy(ENV_EXAMPLE, copy_dir / "jobport.env")
    (copy_dir / ".env").write_text("POSTGRES_PASSWORD=pg-secret\nRABBITMQ_PASSWORD=mq-secret\n")
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(tmp_path)}
    for files in (["compose.yaml"], ["compose.yaml", "compose.rabbitmq.yaml"]):
        args = [arg for name in files for arg in ("-f", str(copy_dir / name))]
        result = subprocess.run(
            [*compose, *args, "config", "--format", "json"],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=60,
        )
        assert result.returncode == 0, f"docker compose config {files}: {result.stderr}"
        services = json.loads(result.stdout)["services"]
        # deploy/.env is read from beside the file, whatever the working directory.
        url = services["api"]["environment"]["JOBPORT_DATABASE_URL"]
        assert url == "postgresql+psycopg://jobport:pg-secret@postgres:5432/jobport"
        broker = services["worker"]["environment"]["JOBPORT_BROKER_URL"]
        assert broker.startswith("amqp://jobport:mq-secret@" if len(files) == 2 else "redis://")
    broken = copy_dir / "compose.yaml"
    broken.write_text(broken.read_text().replace('command: ["scheduler"]', 'comand: ["sched"]'))
    result = subprocess.run(
        [*compose, "-f", str(broken), "config", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert "comand" in result.stderr and not result.stdout.strip(), "a broken file passed"


# --- systemd ---------------------------------------------------------------------------

UNIT_NAMES = [
    "jobport-api.service",
    "jobport-worker@.service",
    "jobport-scheduler.service",
    "jobport-migrate.service",
]
# Keys the units may use, per section: a misspelt one is a typo systemd would only warn of.
KNOWN_KEYS = {
    "Unit": {"Description", "Documentation", "Wants", "Requires", "After", "Before"},
    "Service": {
        "Type", "RemainAfterExit", "User", "Group", "Environment", "EnvironmentFile",
        "StateDirectory", "WorkingDirectory", "ExecStart", "Restart", "RestartSec",
        "KillMode", "TimeoutStopSec", "NoNewPrivileges", "ProtectSystem", "ProtectHome",
        "PrivateTmp", "PrivateDevices", "ProtectKernelTunables", "ProtectKernelModules",
        "ProtectControlGroups", "RestrictSUIDSGID", "LockPersonality", "ReadWritePaths",
    },
    "Install": {"WantedBy"},
}  # fmt: skip


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """A unit file's sections and their keys' values; raises ValueError on a line that is
    neither a section, an assignment, a comment nor blank."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue
        if match := re.fullmatch(r"\[([A-Za-z]+)\]", stripped):
            current = sections.setdefault(match.group(1), {})
        elif current is not None and (match := re.fullmatch(r"([A-Za-z]+)\s*=\s*(.*)", stripped)):
            current.setdefault(match.group(1), []).append(match.group(2))
        else:
            raise ValueError(f"line {number}: {line!r}")
    return sections


def unit_problems(name: str, text: str) -> list[str]:
    """What is wrong with a jobport unit by this project's rules, one line each."""
    try:
        unit = parse_unit(text)
    except ValueError as exc:
        return [f"not a unit file: {exc}"]
    problems = [f"unknown section [{s}]" for s in unit if s not in KNOWN_KEYS]
    problems += [
        f"[{section}] {key}: unknown key"
        for section, keys in unit.items()
        for key in keys
        if key not in KNOWN_KEYS.get(section, set())
    ]
    service = unit.get("Service", {})
    starts = service.get("ExecStart", [])
    if len(starts) != 1 or not starts[0].startswith(f"{INSTALLED_AT} "):
        problems.append(f"ExecStart is not one `{INSTALLED_AT} ...` command: {starts}")
    wanted = {
        "User": ["jobport"],
        "EnvironmentFile": ["/etc/jobport/jobport.env"],
        "NoNewPrivileges": ["yes"],
        "ProtectSystem": ["strict"],
        "PrivateTmp": ["yes"],
        "StateDirectory": ["jobport"],  # the one writable place, also the working directory
        "WorkingDirectory": ["/var/lib/jobport"],
    }
    if name == "jobport-migrate.service":
        wanted |= {"Type": ["oneshot"]}
    else:
        wanted |= {"Restart": ["on-failure"]}
        if "jobport-migrate.service" not in " ".join(unit.get("Unit", {}).get("After", [])):
            problems.append("does not start after jobport-migrate.service")
    if name.startswith("jobport-worker@"):
        # SIGTERM to the worker (its runs finish), SIGKILL to the whole control group after
        # the timeout: steps' process groups die with the worker.
        wanted |= {"KillMode": ["mixed"]}
    problems += [
        f"{key}={service.get(key)}, wanted {value}"
        for key, value in wanted.items()
        if service.get(key) != value
    ]
    if unit.get("Install", {}).get("WantedBy") != ["multi-user.target"]:
        problems.append("not wanted by multi-user.target")
    return problems


def unit_commands(text: str) -> list[str]:
    """The jobport command line of a unit's ExecStart, with %I and $VARS of Environment=
    filled in as systemd would for the instance `default`."""
    service = parse_unit(text)["Service"]
    variables = dict(v.split("=", 1) for v in service.get("Environment", []))
    line = service["ExecStart"][0].replace("%I", "default")
    line = re.sub(r"\$\{(\w+)\}", lambda m: variables[m.group(1)], line)
    return shlex.split(line)[1:]


@pytest.mark.parametrize("name", UNIT_NAMES)
def test_systemd_units_follow_the_rules(name: str) -> None:
    assert unit_problems(name, (UNITS / name).read_text()) == []


def test_a_broken_unit_is_refused() -> None:
    text = (UNITS / "jobport-worker@.service").read_text()
    for broken in (
        text.replace("ExecStart=", "ExecStrat="),
        text.replace("KillMode=mixed", "KillMode=process"),
        text.replace("[Service]", "[Servce]"),
        text.replace("User=jobport\n", ""),
        text.replace("Restart=on-failure", "Restart = on-failure\n  oops"),
    ):
        assert unit_problems("jobport-worker@.service", broken), broken


def systemd_verify(directory: Path) -> subprocess.CompletedProcess[str]:
    """`systemd-analyze verify` on every unit in `directory`, their ExecStart pointed at this
    checkout's jobport (verify insists that the command exists)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("no systemd-analyze here; test_systemd_units_follow_the_rules checks them")
    units = sorted(directory.glob("*.service"))
    for unit in units:
        unit.write_text(unit.read_text().replace(INSTALLED_AT, JOBPORT))
    return subprocess.run(
        [analyze, "verify", "--man=no", *map(str, units)],
        capture_output=True,
        text=True,
        cwd=directory,
        timeout=60,
    )


def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    shutil.copytree(UNITS, tmp_path / "units")
    result = systemd_verify(tmp_path / "units")
    # A warning (an unknown key, a bad value that is ignored) still exits 0: none is allowed.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_systemd_refuses_a_broken_copy(tmp_path: Path) -> None:
    (tmp_path / "units").mkdir()
    text = (UNITS / "jobport-api.service").read_text()
    (tmp_path / "units" / "jobport-api.service").write_text(text.replace("Restart=", "Restrt="))
    result = systemd_verify(tmp_path / "units")
    assert "Restrt" in result.stdout + result.stderr


# --- What the recipes name exists ---------------------------------------------------------


def recipe_commands() -> list[list[str]]:
    """Every jobport command line the compose files, the units and the image run."""
    commands = []
    for path in COMPOSE_FILES:
        for service in load_compose(path)["services"].values():
            if "build" in service and "command" in service:
                commands.append(list(service["command"]))
    commands += [unit_commands((UNITS / name).read_text()) for name in UNIT_NAMES]
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.M)
    assert cmd is not None, "the Dockerfile has no CMD"
    commands.append(json.loads(cmd.group(1)))
    return commands


def test_the_recipes_run_commands_this_jobport_has() -> None:
    commands = recipe_commands()
    assert {c[0] for c in commands} >= {"serve", "worker", "scheduler", "db"}
    for command in commands:
        # --help last: click still refuses an unknown command or option before printing it.
        result = subprocess.run(
            [JOBPORT, *command, "--help"], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, f"jobport {shlex.join(command)}: {result.stderr}"


def env_example_assignments() -> dict[str, str]:
    """The example's JOBPORT_* assignments, commented-out ones too."""
    found = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if match := re.fullmatch(r"#?\s*(JOBPORT_[A-Z0-9_]+)=(.*)", line.strip()):
            found[match.group(1)] = match.group(2)
    return found


def test_every_setting_the_recipes_name_is_a_setting_of_jobport() -> None:
    from jobport.settings import Settings

    real = {f"JOBPORT_{name.upper()}" for name in Settings.model_fields}
    texts = [p.read_text() for p in [ENV_EXAMPLE, *COMPOSE_FILES, *UNITS.glob("*.service")]]
    named = {name for text in texts for name in SETTING_NAME.findall(text)}
    assert named - real == set()


def test_the_env_example_has_what_each_role_needs_and_valid_values() -> None:
    from jobport.settings import Settings

    found = env_example_assignments()
    needed = {
        "JOBPORT_DATABASE_URL", "JOBPORT_ENCRYPTION_KEY", "JOBPORT_KEY_PEPPER",
        "JOBPORT_TOKEN_SECRET", "JOBPORT_EXECUTOR", "JOBPORT_BROKER_URL",
        "JOBPORT_RATE_LIMIT_STORAGE_URL", "JOBPORT_SCHEDULER_ENABLED",
        "JOBPORT_ADMIN_PASSWORD", "JOBPORT_TRUSTED_PROXIES", "JOBPORT_METRICS_BIND",
        "JOBPORT_REPUBLISH_SECONDS", "JOBPORT_HEARTBEAT_TIMEOUT",
    }  # fmt: skip
    assert needed - set(found) == set()
    assert found["JOBPORT_DATABASE_URL"].startswith("postgresql+psycopg://")
    # Every value shown, commented or not, is one jobport accepts.
    values = {name.removeprefix("JOBPORT_").lower(): value for name, value in found.items()}
    settings = Settings(**values)
    assert settings.executor == "celery" and settings.scheduler_enabled is False


def test_the_image_installs_extras_that_exist() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    installed = re.search(r"pip install '\.\[([a-z,]+)\]'", dockerfile)
    assert installed is not None
    assert set(installed.group(1).split(",")) == {"postgres", "celery"} <= set(extras)
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.M)
    assert re.search(r"^USER jobport$", dockerfile, re.M)  # not root
    assert re.search(r'^ENTRYPOINT \["jobport"\]$', dockerfile, re.M)
