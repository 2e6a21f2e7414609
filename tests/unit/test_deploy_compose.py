"""deploy/compose.yaml (and the GPU override compose.gpu.yaml), checked without a Docker engine: the services
and their dependencies, the volumes, Redis's append-only file, Orthanc wired to the listener, environment
variables the programs read and accept, secrets only from the env file, and the GPU only in the GPU variant."""

from __future__ import annotations

import ipaddress
import json
import re
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from services.gateway.settings import GatewaySettings
from services.listener.settings import ListenerSettings
from services.worker.settings import WorkerSettings
from shared.config import settings_from_environ
from shared.config.describe import describe_settings

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
PROGRAMS = {"listener": ListenerSettings, "worker": WorkerSettings, "gateway": GatewaySettings}
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
REQUIRED = re.compile(r"\$\{\w+:\?[^}]+\}")  # `${VAR:?message}`: compose stops when VAR is unset or empty
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|_KEY$|REDISCLI_AUTH")
SAMPLE_SECRET = "0123456789abcdef" * 4  # what `openssl rand -hex 32` gives


def compose(name: str = "compose.yaml") -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


def services(name: str = "compose.yaml") -> dict:
    return compose(name)["services"]


def substituted(text: str) -> str:
    """`text` as compose would pass it: required variables get a sample secret, the others their default."""
    def one(match: re.Match) -> str:
        if match["op"] in (":?", "?"):
            return SAMPLE_SECRET
        assert match["op"] in (":-", "-"), f"{match[0]}: expected a default or a required variable"
        return match["arg"]
    return INTERPOLATION.sub(one, text)


def environment(service: str, *files: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for name in files or ("compose.yaml",):
        merged.update(services(name).get(service, {}).get("environment") or {})
    return merged


def image_environment(service: str) -> dict[str, str]:
    return DockerfileParser(str(DEPLOY / "images" / f"{service}.Dockerfile")).envs


def test_the_stack_has_every_service_with_pinned_images():
    found = services()
    assert set(found) == {"redis", "qdrant", "orthanc", "listener", "worker", "gateway"}
    assert found["redis"]["image"] == "redis:7.4-alpine"
    assert found["qdrant"]["image"] == "qdrant/qdrant:v1.15.4"
    assert re.fullmatch(r"orthancteam/orthanc:\d+\.\d+\.\d+", found["orthanc"]["image"])


@pytest.mark.parametrize("service", PROGRAMS)
def test_our_services_are_built_from_their_dockerfile_with_the_project_version(service):
    entry = services()[service]
    assert entry["image"] == f"tumorsearch/{service}:{VERSION}"
    context = (DEPLOY / entry["build"]["context"]).resolve()
    assert context == REPO, f"{service}: build context {context}, expected the repository root"
    assert entry["build"]["dockerfile"] == f"deploy/images/{service}.Dockerfile"
    assert (context / entry["build"]["dockerfile"]).is_file()


def test_redis_keeps_an_append_only_file_on_a_named_volume():
    redis = services()["redis"]
    command = redis["command"]
    assert command[0] == "redis-server" and command[command.index("--appendonly") + 1] == "yes"
    assert any(v.split(":")[1] == "/data" for v in redis["volumes"]), "Redis's /data is not on a volume"
    assert "redis-cli ping" in " ".join(redis["healthcheck"]["test"])


def test_depends_on_names_existing_services_that_report_health():
    found = services()
    with_healthcheck = {name for name, entry in found.items() if "healthcheck" in entry} | set(PROGRAMS)
    for name, entry in found.items():
        for dependency, condition in (entry.get("depends_on") or {}).items():
            assert dependency in found, f"{name} depends on {dependency}, which is not a service"
            assert condition == {"condition": "service_healthy"}, f"{name} -> {dependency}: {condition}"
            assert dependency in with_healthcheck, f"{name} waits for {dependency}'s health, which has no check"
    assert set(found["worker"]["depends_on"]) >= {"redis", "qdrant"}
    assert set(found["gateway"]["depends_on"]) >= {"redis", "qdrant"}


def test_named_volumes_are_declared_and_the_data_folder_is_shared():
    declared = set(compose()["volumes"])
    for name, entry in services().items():
        for volume in entry.get("volumes", []):
            source = volume.split(":")[0]
            assert source in declared, f"{name}: volume {source} is not declared under volumes:"
    for service in PROGRAMS:
        home = image_environment(service)["TUMORSEARCH_HOME"]
        assert f"tumorsearch-data:{home}" in services()[service]["volumes"], f"{service}: no shared data volume"


@pytest.mark.parametrize("service", PROGRAMS)
def test_compose_variables_are_read_by_the_service_and_accepted(service):
    compose_env = environment(service, "compose.yaml", "compose.gpu.yaml")
    readable = {row.variable for row in describe_settings(PROGRAMS[service])}
    ours = {name for name in compose_env if name.startswith("TUMORSEARCH_")}
    assert ours <= readable, f"{service}: variables its program does not read: {ours - readable}"
    env = image_environment(service) | {name: substituted(value) for name, value in compose_env.items()}
    settings = settings_from_environ(PROGRAMS[service], env)  # raises on a value the program would refuse
    assert urlsplit(settings.broker.url).hostname in services()
    if hasattr(settings, "vector_store"):
        assert urlsplit(settings.vector_store.url).hostname in services()


def test_secrets_come_only_from_required_interpolation():
    secret_settings = {row.variable for model in PROGRAMS.values() for row in describe_settings(model)
                       if row.type == "secret"}
    checked = 0
    for file in ("compose.yaml", "compose.gpu.yaml"):
        for name, entry in services(file).items():
            for variable, value in (entry.get("environment") or {}).items():
                if variable in secret_settings or SECRET_NAME.search(variable):
                    assert REQUIRED.fullmatch(value), f"{file}: {name}: {variable} is not ${{VAR:?message}}"
                    checked += 1
                password = urlsplit(value).password if "://" in value else None
                if password is not None:
                    assert REQUIRED.fullmatch(password), f"{file}: {name}: {variable} has a literal password"
    assert checked >= 6, "expected the Qdrant key (3x), the patient hash key, the admin key and Redis's auth"


def test_redis_and_orthanc_passwords_are_interpolated():
    found = services()
    command = found["redis"]["command"]
    assert REQUIRED.fullmatch(command[command.index("--requirepass") + 1])
    users = json.loads(found["orthanc"]["environment"]["ORTHANC__REGISTERED_USERS"])
    assert users and all(REQUIRED.fullmatch(password) for password in users.values())


def test_no_literal_looks_like_a_key():
    """A pasted secret (a long token of letters and digits) anywhere in the files, outside `${…}`."""
    for file in ("compose.yaml", "compose.gpu.yaml", "compose.env.example"):
        text = INTERPOLATION.sub("", (DEPLOY / file).read_text())
        tokens = re.findall(r"[A-Za-z0-9+/_-]{24,}", text)  # "=" splits NAME=value
        suspicious = [t for t in tokens if re.search(r"\d", t) and re.search(r"[A-Za-z]", t)]
        assert not suspicious, f"{file}: literal that looks like a secret: {suspicious}"


def test_the_env_example_names_every_required_variable_and_no_value():
    required = {m["name"] for m in INTERPOLATION.finditer((DEPLOY / "compose.yaml").read_text())
                if m["op"] in (":?", "?")}
    example = {}
    for line in (DEPLOY / "compose.env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            example[name.strip()] = value.strip()
    assert required == {"REDIS_PASSWORD", "QDRANT_API_KEY", "PATIENT_HASH_KEY", "GATEWAY_ADMIN_KEY",
                        "ORTHANC_PASSWORD"}
    assert set(example) == required, f"compose.env.example lists {set(example)}, compose requires {required}"
    assert not [name for name, value in example.items() if value], "compose.env.example must hold no secret"


def test_orthanc_can_store_to_the_listener_and_the_listener_admits_it():
    found = services()
    orthanc_env = found["orthanc"]["environment"]
    listener = settings_from_environ(ListenerSettings, image_environment("listener") | {
        name: substituted(value) for name, value in environment("listener").items()}).listener
    modality = json.loads(orthanc_env["ORTHANC__DICOM_MODALITIES"])["tumorsearch"]
    assert modality == {"AET": listener.ae_title, "Host": "listener", "Port": listener.port}
    address = found["orthanc"]["networks"]["tumorsearch"]["ipv4_address"]
    subnet = compose()["networks"]["tumorsearch"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(address) in ipaddress.ip_network(subnet)
    assert f"{orthanc_env['ORTHANC__DICOM_AET']}@{address}/32" in listener.peers
    assert "*@127.0.0.1/32" in listener.peers, "the image's health check (C-ECHO from loopback) needs it"
    assert found["listener"]["networks"] == ["tumorsearch"]


def test_the_worker_sends_segmentations_to_the_demo_pacs():
    destination = services()["worker"]["environment"]["TUMORSEARCH_WORKER__SEG_DESTINATION"]
    ae_title, _, address = destination.partition("@")
    host, _, port = address.partition(":")
    assert ae_title == services()["orthanc"]["environment"]["ORTHANC__DICOM_AET"]
    assert host == "orthanc" and port == "4242"  # Orthanc's default DICOM port


def test_published_ports_match_the_settings_and_web_ports_stay_on_loopback():
    found = services()
    assert found["gateway"]["ports"] == [f"127.0.0.1:{GatewaySettings().gateway.port}:8080"]
    assert all(p.startswith("127.0.0.1:") for p in found["orthanc"]["ports"])
    (dicom,) = found["listener"]["ports"]
    assert dicom.rsplit(":", 1)[1] == str(ListenerSettings().listener.port)
    assert not [name for name in ("redis", "qdrant", "worker") if "ports" in found[name]]


@pytest.mark.parametrize("service", PROGRAMS)
def test_our_services_run_read_only_without_capabilities(service):
    entry = services()[service]
    assert entry["read_only"] is True and entry["cap_drop"] == ["ALL"]
    assert "/tmp" in entry["tmpfs"] and "no-new-privileges:true" in entry["security_opt"]


def test_the_gpu_is_requested_only_in_the_gpu_variant():
    for name, entry in services().items():
        assert "deploy" not in entry, f"compose.yaml: {name} has a deploy section (GPU belongs in compose.gpu.yaml)"
    gpu = services("compose.gpu.yaml")
    assert set(gpu) == {"worker"}
    (device,) = gpu["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert gpu["worker"]["environment"]["TUMORSEARCH_WORKER__DEVICE"] == "cuda"
