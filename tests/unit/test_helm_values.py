"""What single values do to the rendered chart (GPU, external stores, ingress, DICOM TLS, existing claim, tests,
network policies, NOTES), values.yaml's contract keys and comments, and the schema's refusals (a bad values file
too). Rendering, lint and Kubernetes validation of every value set: test_helm_chart.py."""

from __future__ import annotations

from pathlib import Path

import helm_python as helm
import pytest
import yaml

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "tumorsearch"
SETS = REPO / "tests" / "data" / "helm"
CONTRACT_KEYS = ("worker.replicas", "worker.gpu.enabled", "gateway.ingress.enabled", "redis.enabled", "redis.url",
                 "qdrant.enabled", "qdrant.url")


def render(values: dict | str) -> list[dict]:
    if isinstance(values, str):
        values = yaml.safe_load((SETS / f"{values}.yaml").read_text())
    manifests = helm.Chart.load(CHART).render(values, name="ts", namespace="pacs", is_install=True)
    return [doc for path, text in sorted(manifests.items()) if path.endswith(".yaml")
            for doc in yaml.safe_load_all(text) if doc]


def find(docs: list[dict], kind: str, component: str) -> list[dict]:
    return [doc for doc in docs
            if doc["kind"] == kind and doc["metadata"]["labels"]["app.kubernetes.io/component"] == component]


def only(docs: list[dict], kind: str, component: str) -> dict:
    (doc,) = find(docs, kind, component)
    return doc


def container(doc: dict) -> dict:
    spec = doc["spec"] if doc["kind"] == "Pod" else doc["spec"]["template"]["spec"]
    (first,) = spec["containers"]
    return first


def env(doc: dict) -> dict[str, dict]:
    return {entry["name"]: entry for entry in container(doc).get("env", [])}


def test_contract_keys_exist_in_values_yaml():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for key in CONTRACT_KEYS:
        node = values
        for part in key.split("."):
            assert isinstance(node, dict) and part in node, f"expected {key} in values.yaml; {part!r} is missing"
            node = node[part]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert (chart["apiVersion"], chart["name"], chart["version"], chart["appVersion"]) == \
        ("v2", "tumorsearch", "0.1.0", "0.1.0")


def test_gpu_on_requests_gpus_on_tainted_nodes_and_uses_cuda():
    worker = only(render("gpu-on"), "Deployment", "worker")
    resources = container(worker)["resources"]
    assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"] == 1
    spec = worker["spec"]["template"]["spec"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    assert any(t.get("key") == "dedicated" for t in spec["tolerations"]), "expected the values' own toleration"
    assert spec["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert spec["runtimeClassName"] == "nvidia" and worker["spec"]["replicas"] == 2
    assert worker["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0, "a surge pod would wait for a held GPU"
    assert env(worker)["TUMORSEARCH_WORKER__DEVICE"]["value"] == "cuda"


def test_gpu_off_requests_no_gpu_and_autoscales_on_cpu():
    docs = render("gpu-off")
    worker = only(docs, "Deployment", "worker")
    assert "nvidia.com/gpu" not in str(worker), "expected no GPU limit or toleration with the GPU off"
    assert env(worker)["TUMORSEARCH_WORKER__DEVICE"]["value"] == "cpu"
    assert "replicas" not in worker["spec"], "expected the autoscaler, not the Deployment, to own the replicas"
    hpa = only(docs, "HorizontalPodAutoscaler", "worker")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert not find(render({}), "HorizontalPodAutoscaler", "worker"), "expected no autoscaler by default"


def test_external_stores_install_no_server_and_read_credentials_from_the_given_secrets():
    docs = render("external-stores")
    assert not [doc for doc in docs if doc["kind"] == "StatefulSet"], "expected neither Redis nor Qdrant installed"
    assert not find(docs, "NetworkPolicy", "redis") and not find(docs, "NetworkPolicy", "qdrant")
    assert not [doc for doc in docs if doc["kind"] == "Secret"], "expected every secret to be the admin's own"
    for component in ("listener", "worker", "gateway"):
        broker = env(only(docs, "Deployment", component))["TUMORSEARCH_BROKER__URL"]
        assert broker == {"name": "TUMORSEARCH_BROKER__URL", "valueFrom": {"secretKeyRef": {
            "name": "tumorsearch-broker", "key": "broker-url"}}}, f"{component}: {broker}"
    worker = env(only(docs, "Deployment", "worker"))
    assert worker["TUMORSEARCH_VECTOR_STORE__URL"]["value"] == "https://qdrant.db.hospital.example:6333"
    assert worker["TUMORSEARCH_VECTOR_STORE__API_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "tumorsearch-qdrant", "key": "api-key"}


def test_default_stores_are_statefulsets_with_persistence_and_generated_credentials():
    docs = render({})
    redis = only(docs, "StatefulSet", "redis")
    assert container(redis)["image"] == "redis:7.4-alpine"
    assert ["--appendonly", "yes"] == container(redis)["args"][:2]
    assert redis["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "8Gi"
    qdrant = only(docs, "StatefulSet", "qdrant")
    assert container(qdrant)["image"] == "qdrant/qdrant:v1.15.4"
    assert "QDRANT__SERVICE__API_KEY" in env(qdrant)
    secret = only(docs, "Secret", "redis")
    assert set(secret["data"]) == {"password", "url"}
    worker = only(docs, "Secret", "worker")
    assert worker["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_ingress_with_tls_routes_to_the_gateway_and_trusts_one_proxy():
    docs = render("ingress-tls")
    ingress = only(docs, "Ingress", "gateway")
    assert ingress["spec"]["tls"] == [{"secretName": "tumorsearch-gateway-tls",
                                       "hosts": ["tumorsearch.hospital.example"]}]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "ts-tumorsearch-gateway", "port": {"name": "http"}}
    gateway = env(only(docs, "Deployment", "gateway"))
    assert gateway["TUMORSEARCH_GATEWAY__TRUSTED_PROXIES"]["value"] == "1"
    assert gateway["TUMORSEARCH_GATEWAY__OIDC_AUDIENCE"]["value"] == "tumorsearch"
    assert not find(render({}), "Ingress", "gateway"), "expected no Ingress by default"
    assert env(only(render({}), "Deployment", "gateway"))["TUMORSEARCH_GATEWAY__TRUSTED_PROXIES"]["value"] == "0"


def test_listener_tls_and_load_balancer_keep_the_pacs_address():
    docs = render("listener-tls-loadbalancer")
    service = only(docs, "Service", "listener")
    assert service["spec"]["type"] == "LoadBalancer" and service["spec"]["externalTrafficPolicy"] == "Local"
    assert service["spec"]["loadBalancerSourceRanges"] == ["10.30.1.20/32", "10.30.2.0/24"]
    assert service["spec"]["ports"][0]["port"] == 2762
    listener = only(docs, "Deployment", "listener")
    variables = env(listener)
    assert variables["TUMORSEARCH_LISTENER__TLS_CERTIFICATE"]["value"] == "/etc/tumorsearch/tls/tls.crt"
    assert variables["TUMORSEARCH_LISTENER__TLS_CLIENT_CA"]["value"] == "/etc/tumorsearch/tls/ca.crt"
    volumes = {v["name"]: v for v in listener["spec"]["template"]["spec"]["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == "tumorsearch-dicom-tls"
    # tumorsearch echo speaks plain DICOM: no echo test pod, and no HELMTEST peer opened for it.
    assert variables["TUMORSEARCH_LISTENER__PEERS"]["value"] == "PACS@10.30.1.20,ARCHIVE@10.30.2.0/24"
    assert not find(docs, "Pod", "test-echo")


def test_existing_claim_is_mounted_by_all_three_programs_and_no_claim_is_created():
    docs = render("existing-claim")
    assert not [doc for doc in docs if doc["kind"] == "PersistentVolumeClaim"]
    for component in ("listener", "worker", "gateway"):
        volumes = only(docs, "Deployment", component)["spec"]["template"]["spec"]["volumes"]
        assert {"name": "data", "persistentVolumeClaim": {"claimName": "pacs-studies"}} in volumes, component
    assert not [doc for doc in docs if doc["kind"] in ("NetworkPolicy", "Pod")], "policies and tests are off"
    assert env(only(docs, "Deployment", "listener"))["TUMORSEARCH_LISTENER__PEERS"]["value"] == "*@192.168.40.0/24"
    assert only(docs, "Service", "listener")["spec"]["ports"][0]["nodePort"] == 31112
    claim = only(render({}), "PersistentVolumeClaim", "data")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]


def test_helm_test_pods_check_readiness_and_echo_the_listener_as_an_allowed_peer():
    docs = render({})
    ready, echo = only(docs, "Pod", "test-ready"), only(docs, "Pod", "test-echo")
    for pod in (ready, echo):
        assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert container(ready)["command"][-1] == "http://ts-tumorsearch-gateway:8080/readyz"
    assert container(echo)["args"] == ["echo", "--host", "ts-tumorsearch-listener", "--port", "11112",
                                       "--called-ae", "TUMORSEARCH", "--calling-ae", "HELMTEST", "--timeout", "15"]
    assert env(only(docs, "Deployment", "listener"))["TUMORSEARCH_LISTENER__PEERS"]["value"] == "HELMTEST@10.0.0.0/8"
    untested = env(only(render({"tests": {"enabled": False}}), "Deployment", "listener"))
    assert "TUMORSEARCH_LISTENER__PEERS" not in untested, "expected no HELMTEST peer without tests"


def policy_sources(policy: dict, port: str) -> list[dict]:
    rules = [rule for rule in policy["spec"].get("ingress", []) if rule["ports"][0]["port"] == port]
    return [source for rule in rules for source in rule.get("from", [{"anywhere": True}])]


def components_of(sources: list[dict]) -> set[str]:
    return {s["podSelector"]["matchLabels"].get("app.kubernetes.io/component") for s in sources if "podSelector" in s}


def test_network_policies_admit_only_who_needs_each_port():
    docs = render("gpu-on")
    assert components_of(policy_sources(only(docs, "NetworkPolicy", "qdrant"), "http")) == {"worker", "gateway"}
    assert components_of(policy_sources(only(docs, "NetworkPolicy", "redis"), "redis")) == \
        {"listener", "worker", "gateway"}
    dicom = policy_sources(only(docs, "NetworkPolicy", "listener"), "dicom")
    assert [s["ipBlock"]["cidr"] for s in dicom if "ipBlock" in s] == ["10.20.0.15/32"]
    assert components_of(dicom) == {"test-echo"}
    assert "ingress" not in only(docs, "NetworkPolicy", "worker")["spec"], "expected the worker to admit nothing"
    assert policy_sources(only(docs, "NetworkPolicy", "gateway"), "http") == [{"anywhere": True}]
    behind_ingress = policy_sources(only(render("ingress-tls"), "NetworkPolicy", "gateway"), "http")
    assert behind_ingress[0] == {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}


@pytest.mark.parametrize("values, where", [
    ({"worker": {"replica": 2}}, "additional properties 'replica'"),
    ({"worker": {"replicas": "two"}}, "/worker/replicas"),
    ({"redis": {"enabled": False}}, "/redis"),
    ({"qdrant": {"enabled": False}}, "/qdrant/url"),
    ({"redis": {"enabled": False, "url": "redis://:password@redis.internal:6379/0"}}, "/redis/url"),
    ({"gateway": {"ingress": {"tls": [{"secretName": "x", "host": ["a"]}]}}}, "additional properties 'host'"),
    ({"listener": {"tls": {"enabled": True}}}, "/listener/tls/secretName"),
    ({"gateway": {"extraEnv": [{"name": "PYTHONPATH", "value": "/x"}]}}, "/gateway/extraEnv/0/name"),
    ({"listener": {"peers": ["PACS"]}}, "/listener/peers/0"),
    ({"gateway": {"ingress": {"enabled": True, "hosts": []}}}, "/gateway/ingress/hosts"),
])
def test_schema_rejects_bad_values(values, where):
    chart = helm.Chart.load(CHART)
    with pytest.raises(helm.HelmValuesError) as refused:
        chart.validate_schema(values)
    assert where in str(refused.value), f"expected the refusal to name {where}; found {refused.value}"
    with pytest.raises(helm.HelmValuesError):
        chart.render(values, name="ts", namespace="pacs", is_install=True)


def test_schema_accepts_an_external_redis_given_by_url_or_by_secret():
    chart = helm.Chart.load(CHART)
    chart.validate_schema({"redis": {"enabled": False, "url": "redis://redis.internal:6379/0"}})
    chart.validate_schema({"redis": {"enabled": False, "existingSecret": "broker"}})


def test_a_bad_values_file_is_refused_by_lint_and_by_install_naming_each_mistake():
    values = helm.values_from_yaml((SETS / "invalid" / "admin-mistakes.yaml").read_text())
    report = helm.lint(CHART, values, strict=True)
    errors = "\n".join(report["errors"])
    for where in ("additional properties 'replica'", "/worker/gpu/enabled", "/listener/service/type",
                  "/qdrant/url"):
        assert where in errors, f"expected lint to name {where}; found {errors or report}"
    with pytest.raises(helm.HelmValuesError):
        helm.Chart.load(CHART).render(values, name="ts", namespace="pacs", is_install=True)


def open_object_schemas(node, path: str = "") -> list[str]:
    """Paths of object schemas that list properties yet let unknown keys through."""
    found = []
    if isinstance(node, dict):
        if "properties" in node and node.get("additionalProperties") is not False \
                and not path.endswith(("/if", "/then")) and "/anyOf" not in path:
            found.append(path or "/")
        for key, child in node.items():
            found += open_object_schemas(child, f"{path}/{key}")
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += open_object_schemas(child, f"{path}/anyOf{index}" if path.endswith("anyOf") else path)
    return found


def test_the_schema_closes_every_object_it_describes():
    """additionalProperties: false wherever the schema lists properties (if/then only add conditions). The
    free-form objects left are Kubernetes' own types (affinity rules, annotations), which kubernetes-validate
    checks in the rendered manifests, and `global`, Helm's key for parent charts."""
    schema = yaml.safe_load((CHART / "values.schema.json").read_text())
    assert not open_object_schemas(schema), f"expected closed objects; open: {open_object_schemas(schema)}"
    assert schema["additionalProperties"] is False


def uncommented_keys(node: yaml.Node, lines: list[str], path: str = "") -> list[str]:
    missing = []
    for key, value in node.value:
        name = f"{path}.{key.value}".lstrip(".")
        group = isinstance(value, yaml.MappingNode) and value.value and key.value != "resources"
        if group:  # a heading such as `image:`; its keys carry the comments
            missing += uncommented_keys(value, lines, name)
        elif not lines[key.start_mark.line - 1].lstrip().startswith("#"):
            missing.append(name)
    return missing


def test_every_value_has_a_comment_above_it():
    text = (CHART / "values.yaml").read_text()
    missing = uncommented_keys(yaml.compose(text), text.splitlines())
    assert not missing, f"expected a comment line above each value in values.yaml; none above {missing}"


@pytest.mark.parametrize("values, wanted", [
    ({}, ["AE title: TUMORSEARCH", "Host:     ts-tumorsearch-listener.pacs.svc", "Port:     11112",
          "kubectl port-forward -n pacs service/ts-tumorsearch-gateway 8080:8080", "helm test -n pacs ts",
          "WARNING: listener.allowedSources is empty"]),
    ("listener-tls-loadbalancer", ["kubectl get service -n pacs ts-tumorsearch-listener", "Port:     2762",
                                   "TLS:      on", "PACS@10.30.1.20, ARCHIVE@10.30.2.0/24"]),
    ("ingress-tls", ["GATEWAY=https://tumorsearch.hospital.example"]),
    ({"gateway": {"modelVersion": "pisov2d-c64-2427284dc0"}},
     ["pinned to model version pisov2d-c64-2427284dc0", "kubectl rollout status -n pacs deploy/ts-tumorsearch-worker",
      "kubectl exec -n pacs deploy/ts-tumorsearch-worker -- tumorsearch reindex --no-progress"]),
])
def test_notes_tell_the_admin_how_to_point_the_pacs_and_open_the_gateway(values, wanted):
    if isinstance(values, str):
        values = yaml.safe_load((SETS / f"{values}.yaml").read_text())
    manifests = helm.Chart.load(CHART).render(values, name="ts", namespace="pacs", is_install=True)
    notes = manifests["tumorsearch/templates/NOTES.txt"]
    for line in wanted:
        assert line in notes, f"expected {line!r} in NOTES.txt; found:\n{notes}"
    assert ("pinned to model version" in notes) == bool(values.get("gateway", {}).get("modelVersion")), notes


def test_the_worker_liveness_probe_outlasts_the_longest_study():
    for soft_limit in (900, 2000):
        values = {"worker": {"softTimeLimitSeconds": soft_limit, "terminationGracePeriodSeconds": soft_limit + 60}}
        probe = container(only(render(values), "Deployment", "worker"))["livenessProbe"]
        assert probe["periodSeconds"] * probe["failureThreshold"] > soft_limit + 30, probe
        assert "control.ping" in probe["exec"]["command"][-1]
