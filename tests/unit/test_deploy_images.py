"""The three Dockerfiles (deploy/images/) and .dockerignore, checked without a Docker engine: what each COPY
takes exists and reaches the build context, the final stages run as a non-root user with no build tools and a
health check, ports and environment match the settings the program reads, no secret is baked in, and only
the worker gets torch."""

from __future__ import annotations

import json
import re
import socket
import tomllib
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from services.gateway.settings import GatewaySettings
from services.listener.settings import ListenerSettings
from services.worker.settings import WorkerSettings
from shared.config import settings_from_environ
from shared.config.describe import describe_settings

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
PROGRAMS = {"listener": ListenerSettings, "gateway": GatewaySettings, "worker": WorkerSettings}
SERVICES = list(PROGRAMS)
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
NON_ROOT_UID = "10001"
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|cc|clang|make|cmake|build-essential|python3?-dev|python3?-pip|"
                         r"python3?-venv|pip install|git|curl|wget)\b")
SECRET_WORDS = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|_KEY\b|CREDENTIAL", re.IGNORECASE)


def dockerfile(service: str) -> DockerfileParser:
    return DockerfileParser(str(REPO / "deploy" / "images" / f"{service}.Dockerfile"))


def stages(service: str) -> list[list[dict]]:
    """Instructions (comments dropped) per build stage, in order; the last one is the image."""
    result: list[list[dict]] = []
    for instruction in dockerfile(service).structure:
        if instruction["instruction"] == "FROM":
            result.append([])
        if result and instruction["instruction"] != "COMMENT":
            result[-1].append(instruction)
    return result


def values(stage: list[dict], name: str) -> list[str]:
    return [i["value"] for i in stage if i["instruction"] == name]


def healthcheck_argv(service: str) -> list[str]:
    (value,) = values(stages(service)[-1], "HEALTHCHECK")
    command = re.split(r"\s+CMD\s+", value, maxsplit=1)[1].strip()
    return json.loads(command) if command.startswith("[") else ["/bin/sh", "-c", command]


def dockerignored(relative: str) -> bool:
    """Docker's rule for .dockerignore: the last pattern matching the path or a folder above it decides,
    `!` re-includes. Patterns are matched segment by segment; `**` spans any number of segments."""
    parts = relative.split("/")
    verdict = False
    for line in (REPO / ".dockerignore").read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        body = pattern.lstrip("!").strip("/").split("/")
        if any(_segments_match(parts[:depth], body) for depth in range(1, len(parts) + 1)):
            verdict = not pattern.startswith("!")
    return verdict


def _segments_match(path: list[str], pattern: list[str]) -> bool:
    if not pattern:
        return not path
    if pattern[0] == "**":
        return any(_segments_match(path[skip:], pattern[1:]) for skip in range(len(path) + 1))
    return bool(path) and Path(path[0]).match(pattern[0]) and _segments_match(path[1:], pattern[1:])


@pytest.mark.parametrize("service", SERVICES)
def test_every_copy_source_exists_and_is_in_the_build_context(service):
    copies = [v.split() for stage in stages(service) for v in values(stage, "COPY") if "--from=" not in v]
    assert copies, f"{service}: expected COPY instructions taking the package from the repository"
    for *sources, _destination in copies:
        for source in sources:
            assert (REPO / source).exists(), f"{service}: COPY {source}: no such path in the repository"
            assert not dockerignored(source.rstrip("/")), f"{service}: COPY {source} is excluded by .dockerignore"
    taken = {source.rstrip("/") for *sources, _ in copies for source in sources}
    assert taken == {"pyproject.toml", "README.md", "shared", "services"}, f"{service}: copies {taken}"


def test_dockerignore_keeps_out_what_the_images_do_not_need():
    for kept_out in ("tests/unit/test_settings.py", "docs/configuration.md", ".git/HEAD", ".venv/bin/python",
                     "var/studies/ab/x.dcm", "deploy/compose.env", "helm/Chart.yaml",
                     "services/worker/__pycache__/main.cpython-311.pyc"):
        assert dockerignored(kept_out), f".dockerignore lets {kept_out} into the build context"
    for needed in ("pyproject.toml", "README.md", "services/worker/main.py",
                   "shared/model/checkpoints/figshare-2d/weights.pt", "services/gateway/static/index.html"):
        assert not dockerignored(needed), f".dockerignore keeps {needed} out, but the package needs it"


@pytest.mark.parametrize("service", SERVICES)
def test_images_are_multi_stage_with_the_venv_copied_into_the_final_stage(service):
    build, final = stages(service)
    assert any(".[" + service + "]" in v for v in values(build, "RUN")), f"{service}: no pip install of .[{service}]"
    assert values(final, "COPY") == ["--from=build /opt/tumorsearch /opt/tumorsearch"]
    expected = "nvidia/cuda:13.0.1-runtime-ubuntu24.04" if service == "worker" else "python:3.11-slim-bookworm"
    assert dockerfile(service).parent_images == [expected, expected]


@pytest.mark.parametrize("service", SERVICES)
def test_final_stage_runs_as_a_fixed_non_root_user(service):
    final = stages(service)[-1]
    users = values(final, "USER")
    assert users and users[-1].split(":")[0] == NON_ROOT_UID, f"{service}: last USER is {users}"
    accounts = " ".join(values(final, "RUN"))
    assert f"--uid {NON_ROOT_UID}" in accounts and f"--gid {NON_ROOT_UID}" in accounts
    assert f"-o {NON_ROOT_UID} -g {NON_ROOT_UID}" in accounts, f"{service}: the data folder is not owned by the user"


@pytest.mark.parametrize("service", SERVICES)
def test_final_stage_installs_no_build_tools(service):
    for command in values(stages(service)[-1], "RUN"):
        found = BUILD_TOOLS.findall(command)
        assert not found, f"{service}: the final stage installs or runs build tools {found}: {command}"


@pytest.mark.parametrize("service", SERVICES)
def test_entrypoint_and_command_are_registered_subcommands(service):
    final = stages(service)[-1]
    assert [json.loads(v) for v in values(final, "ENTRYPOINT")] == [["tumorsearch"]]
    assert [json.loads(v) for v in values(final, "CMD")] == [[service]]
    assert service in PYPROJECT["project"]["entry-points"]["tumorsearch.commands"]
    labels = dockerfile(service).labels
    assert labels["org.opencontainers.image.version"] == VERSION
    assert labels["org.opencontainers.image.title"] == f"tumorsearch-{service}"


@pytest.mark.parametrize("service", SERVICES)
def test_environment_is_from_the_settings_table_and_valid_for_the_program(service):
    env = dockerfile(service).envs
    assert env["PYTHONDONTWRITEBYTECODE"] == "1" and env["PYTHONUNBUFFERED"] == "1"
    readable = {row.variable for row in describe_settings(PROGRAMS[service])}
    ours = {name: value for name, value in env.items() if name.startswith("TUMORSEARCH_")}
    assert set(ours) <= readable, f"{service}: variables its program does not read: {set(ours) - readable}"
    settings = settings_from_environ(PROGRAMS[service], ours)  # raises on a value the program would refuse
    assert str(settings.home) == "/var/lib/tumorsearch" and settings.log.format == "json"
    assert values(stages(service)[-1], "VOLUME") == ['["/var/lib/tumorsearch"]']


@pytest.mark.parametrize("service", SERVICES)
def test_no_secret_is_baked_into_an_image(service):
    parser = dockerfile(service)
    secrets = {row.variable for row in describe_settings(PROGRAMS[service]) if row.type == "secret"}
    names = set(parser.envs) | set(parser.args) | set(parser.labels)
    assert not names & secrets, f"{service}: sets secret settings {names & secrets}"
    assert not [n for n in names if SECRET_WORDS.search(n)], f"{service}: a secret-like name in {names}"


def test_exposed_ports_are_the_settings_defaults():
    listener = settings_from_environ(ListenerSettings, dockerfile("listener").envs).listener
    expected = {
        "listener": {f"{ListenerSettings().listener.port}/tcp", f"{listener.metrics_port}/tcp"},
        "gateway": {f"{GatewaySettings().gateway.port}/tcp"},
        "worker": set(),  # it only connects out
    }
    assert expected["listener"] == {"11112/tcp", "9102/tcp"} and expected["gateway"] == {"8080/tcp"}
    for service, ports in expected.items():
        exposed = {port for v in values(stages(service)[-1], "EXPOSE") for port in v.split()}
        assert exposed == ports, f"{service}: EXPOSE {exposed}, settings say {ports}"


@pytest.mark.parametrize("service", ["listener", "gateway"])
def test_listener_and_gateway_images_never_install_torch(service):
    text = " ".join(i["value"] for i in dockerfile(service).structure if i["instruction"] != "COMMENT")
    for forbidden in ("torch", "[worker]", "[all]", "[science]", "[dev]", "download.pytorch.org"):
        assert forbidden not in text, f"{service}: its Dockerfile installs {forbidden}"
    extra = PYPROJECT["project"]["optional-dependencies"][service]
    assert not [d for d in extra if "torch" in d or "worker" in d], f"the {service} extra pulls torch: {extra}"


def test_worker_installs_the_cuda_torch_of_the_pin_before_the_project():
    build = values(stages("worker")[0], "RUN")
    pins = [d for d in PYPROJECT["project"]["optional-dependencies"]["worker"] if d.startswith("torch==")]
    assert len(pins) == 1, f"expected one exact torch pin in the worker extra; found {pins}"
    torch_step = next(k for k, command in enumerate(build) if pins[0] in command)
    project_step = next(k for k, command in enumerate(build) if '".[worker]"' in command)
    assert torch_step < project_step, "torch must be installed before .[worker], or pip takes PyPI's build"
    assert "--index-url" in build[torch_step]
    assert "TORCH_INDEX_URL=https://pypi.org/simple" in values(stages("worker")[0], "ARG")


def test_healthchecks_probe_the_running_program():
    listener = " ".join(healthcheck_argv("listener"))
    assert "tumorsearch echo --host 127.0.0.1" in listener and "--calling-ae HEALTHCHECK" in listener
    assert "echo" in PYPROJECT["project"]["entry-points"]["tumorsearch.commands"]
    assert "'/healthz'" in healthcheck_argv("gateway")[-1]
    assert "control.ping" in healthcheck_argv("worker")[-1]


def test_gateway_healthcheck_reads_the_configured_port():
    code = healthcheck_argv("gateway")[-1]
    assert "os.environ.get('TUMORSEARCH_GATEWAY__PORT', '8080')" in code
    assert "TUMORSEARCH_GATEWAY__PORT" in {row.variable for row in describe_settings(GatewaySettings)}


def test_worker_healthcheck_finds_the_node_name_the_worker_gives_itself():
    from services.worker.main import worker_argv

    (hostname,) = [a for a in worker_argv(WorkerSettings()) if a.startswith("--hostname=")]
    assert hostname.endswith("@" + socket.gethostname()), f"the check looks for '@<hostname>'; found {hostname}"
    assert "node.endswith('@' + socket.gethostname())" in healthcheck_argv("worker")[-1]


def test_worker_healthcheck_outlasts_a_study_in_the_solo_pool():
    (value,) = values(stages("worker")[-1], "HEALTHCHECK")
    options = dict(re.findall(r"--([a-z-]+)=(\w+)", value))
    interval_s = int(options["interval"].removesuffix("s"))
    hard_limit_s = WorkerSettings().worker.soft_time_limit_s + 30  # services/worker/tasks.py: soft + 30
    assert interval_s * (int(options["retries"]) - 1) > hard_limit_s, (
        f"a study of up to {hard_limit_s} s (no ping answered meanwhile) would mark the worker unhealthy")
