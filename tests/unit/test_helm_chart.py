"""The Helm chart (helm/tumorsearch), proven without a cluster: Helm v4's own lint and renderer (helm-python-sdk),
Kubernetes' OpenAPI schemas (kubernetes-validate, strict) for 1.29 and 1.33, and the settings models for every
TUMORSEARCH_* variable a pod gets. Value sets: tests/data/helm/*.yaml. Content and schema checks of single
features: test_helm_values.py."""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from shared.config.describe import describe_settings
from shared.config.environ import settings_from_environ
from support.configdoc import PROGRAMS

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "tumorsearch"
VALUE_SETS = sorted((REPO / "tests" / "data" / "helm").glob("*.yaml"))
CASES = ["defaults"] + [path.stem for path in VALUE_SETS]
KUBE_VERSIONS = ("1.29.0", "1.33.0")
RELEASE, NAMESPACE = "pacs-search", "radiology"
POD_KINDS = {"Deployment", "StatefulSet", "Pod"}
PROGRAM_COMPONENTS = ("listener", "worker", "gateway")
# Secret values a pod gets through secretKeyRef: stand-ins that pass the settings' own checks.
SECRET_STAND_INS = {"TUMORSEARCH_BROKER__URL": "redis://:secret@redis:6379/0"}


def values_of(case: str) -> dict:
    if case == "defaults":
        return {}
    return yaml.safe_load((REPO / "tests" / "data" / "helm" / f"{case}.yaml").read_text())


@functools.cache
def _rendered(case: str) -> tuple[dict, ...]:
    manifests = helm.Chart.load(CHART).render(values_of(case), name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs = []
    for path, text in sorted(manifests.items()):
        if path.endswith(".yaml"):
            docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return tuple(docs)


def rendered(case: str) -> list[dict]:
    return copy.deepcopy(list(_rendered(case)))


def pod_spec(doc: dict) -> dict:
    return doc["spec"] if doc["kind"] == "Pod" else doc["spec"]["template"]["spec"]


def component(doc: dict) -> str:
    return doc["metadata"]["labels"]["app.kubernetes.io/component"]


def pods(docs: list[dict]) -> list[dict]:
    return [doc for doc in docs if doc["kind"] in POD_KINDS]


def env_of(doc: dict) -> dict[str, dict]:
    """Name -> env entry of the pod's single container."""
    (container,) = pod_spec(doc)["containers"]
    return {entry["name"]: entry for entry in container.get("env", [])}


def program_settings(program: str) -> set[str]:
    return {row.variable for row in describe_settings(PROGRAMS[program])}


@pytest.mark.parametrize("case", CASES)
def test_lint_strict_is_clean(case):
    for version in KUBE_VERSIONS:
        report = helm.lint(CHART, values_of(case) or None, strict=True, kube_version=f"v{version}")
        problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
        assert not problems, f"expected helm lint --strict clean for {case} on {version}; found {problems}"


@pytest.mark.parametrize("case", CASES)
def test_every_manifest_is_valid_kubernetes(case):
    docs = rendered(case)
    assert len(docs) >= 8, f"expected the chart's manifests for {case}; found {len(docs)} documents"
    for version in KUBE_VERSIONS:
        for doc in docs:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{case}: {doc['kind']} {doc['metadata']['name']} is not valid for Kubernetes "
                            f"{version}: {error}")


def test_the_validator_is_strict_enough_to_catch_a_misspelt_field():
    """Guards the test above: a misspelt pod field must fail, else 'valid' would prove nothing."""
    deployment = next(doc for doc in rendered("defaults") if doc["kind"] == "Deployment")
    pod_spec(deployment)["securityContext"]["runAsNonroot"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSIONS[0], strict=True)


@pytest.mark.parametrize("case", CASES)
def test_every_pod_is_non_root_read_only_and_bounded(case):
    for doc in pods(rendered(case)):
        name, spec = doc["metadata"]["name"], pod_spec(doc)
        context = spec["securityContext"]
        assert (context["runAsNonRoot"], context["runAsUser"], context["fsGroup"]) == (True, 10001, 10001), name
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        mounts_tmp = {mount["mountPath"] for c in spec["containers"] for mount in c.get("volumeMounts", [])}
        assert "/tmp" in mounts_tmp, f"{name}: expected an emptyDir at /tmp (the root filesystem is read-only)"
        for container in spec["containers"] + spec.get("initContainers", []):
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False and security["readOnlyRootFilesystem"] is True
            assert security["capabilities"] == {"drop": ["ALL"]}, name
            resources = container["resources"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(kind, {})), f"{name}: expected cpu/memory {kind}"


@pytest.mark.parametrize("case", CASES)
def test_every_label_set_and_selector_matches_its_pods(case):
    required = {"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
                "app.kubernetes.io/component", "app.kubernetes.io/managed-by", "helm.sh/chart"}
    for doc in rendered(case):
        assert required <= set(doc["metadata"].get("labels", {})), f"{doc['kind']} {doc['metadata']['name']}"
        if doc["kind"] in {"Deployment", "StatefulSet"}:
            selector = doc["spec"]["selector"]["matchLabels"]
            assert selector.items() <= doc["spec"]["template"]["metadata"]["labels"].items()


@pytest.mark.parametrize("case", CASES)
def test_program_environment_is_the_settings_table_and_validates(case):
    """Every variable a listener/worker/gateway pod gets is one its settings model reads, and together they
    build a valid settings object (secret values replaced by stand-ins)."""
    seen = set()
    for doc in pods(rendered(case)):
        program = component(doc)
        if program not in PROGRAM_COMPONENTS:
            continue
        env = env_of(doc)
        unknown = set(env) - program_settings(program)
        assert not unknown, f"{case}: {program} gets variables its settings do not read: {sorted(unknown)}"
        values = {name: entry.get("value", SECRET_STAND_INS.get(name, "x" * 40)) for name, entry in env.items()}
        settings_from_environ(PROGRAMS[program], values)  # raises SettingsError naming the bad variable
        seen.add(program)
    assert seen == set(PROGRAM_COMPONENTS), f"expected the three programs' pods; found {sorted(seen)}"


@pytest.mark.parametrize("case", CASES)
def test_stores_get_only_their_own_variables(case):
    own = {"redis": lambda name: name in {"REDIS_PASSWORD", "REDISCLI_AUTH"},
           "qdrant": lambda name: name.startswith("QDRANT")}
    for doc in pods(rendered(case)):
        check = own.get(component(doc))
        if check is not None:
            assert all(check(name) for name in env_of(doc)), f"{case}: {sorted(env_of(doc))}"


@pytest.mark.parametrize("case", CASES)
def test_every_secret_reference_resolves(case):
    """A secretKeyRef names a Secret the chart renders (with that key) or one the values say the admin made."""
    docs = rendered(case)
    rendered_keys = {(doc["metadata"]["name"], key) for doc in docs if doc["kind"] == "Secret" for key in doc["data"]}
    text = yaml.safe_dump(values_of(case))
    for doc in pods(docs):
        for entry in env_of(doc).values():
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref is None:
                continue
            pair = (ref["name"], ref["key"])
            assert pair in rendered_keys or (ref["name"] in text and ref["key"] in text), \
                f"{case}: {doc['metadata']['name']} reads {pair}, which nothing creates"
