"""The Helm chart: lint, render with each scenario, validate against the Kubernetes 1.30 schemas,
and check what matters for running voxcast (GPU scheduling, probes, scaling, isolation, secrets)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, HTTPServer

import grpc
import kubernetes_validate
import pytest
import yaml
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from voxcast.config import Settings

from .conftest import CHART

KUBE_VERSION = "1.30.0"
SCENARIOS = ["default", "gpu", "cpu-only", "external-db", "ingress-tls"]
RELEASE = "viewer"


def values_args(scenario: str) -> list[str]:
    return [] if scenario == "default" else ["-f", str(CHART / "ci" / f"{scenario}-values.yaml")]


def template(helm: str, *args: str, release: str = RELEASE) -> list[dict]:
    result = subprocess.run(
        [
            helm,
            "template",
            release,
            str(CHART),
            "--namespace",
            "imaging",
            "--kube-version",
            KUBE_VERSION,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def rendered(helm) -> dict[str, list[dict]]:
    return {scenario: template(helm, *values_args(scenario)) for scenario in SCENARIOS}


def find(docs: list[dict], kind: str, component: str | None = None) -> list[dict]:
    return [
        d
        for d in docs
        if d["kind"] == kind
        and (component is None or d["metadata"]["labels"].get("app.kubernetes.io/component") == component)
    ]


def one(docs, kind, component=None) -> dict:
    (found,) = find(docs, kind, component)
    return found


def pod_specs(docs) -> list[tuple[str, dict]]:
    """(component, pod spec) of every Deployment's template and every test Pod."""
    specs = [(d, d["spec"]["template"]["spec"]) for d in find(docs, "Deployment")]
    specs += [(d, d["spec"]) for d in find(docs, "Pod")]
    return [(d["metadata"]["labels"]["app.kubernetes.io/component"], spec) for d, spec in specs]


def container(deployment: dict) -> dict:
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    return c


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_lint(helm, scenario):
    result = subprocess.run(
        [helm, "lint", "--strict", str(CHART), *values_args(scenario)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_manifest_is_valid_kubernetes_1_30(rendered, scenario):
    docs = rendered[scenario]
    assert len(docs) > 10
    for doc in docs:
        # strict: unknown fields are errors too, so a misspelt key cannot be silently dropped.
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


def test_the_schema_refuses_wrong_values(helm):
    cases = {
        "render.gpu.count=0": "render.gpu.count: Must be greater than or equal to 1",
        "render.autoscaling.metric=memory": "render.autoscaling.metric",
        "render.backend=opencl": "render.backend",
        "render.rendr=1": "Additional property rendr is not allowed",
        "gateway.renderDiscovery=dns": "gateway.renderDiscovery",
        "render.resources.limits.memory=lots": "render.resources.limits.memory",
        "externalDatabase.enabled=true": "externalDatabase.host",
    }
    for setting, message in cases.items():
        result = subprocess.run(
            [helm, "template", RELEASE, str(CHART), "--set", setting],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode != 0, f"{setting} was accepted"
        assert message in result.stderr, (setting, result.stderr)
    result = subprocess.run(
        [
            helm,
            "template",
            RELEASE,
            str(CHART),
            "--set",
            "ingress.enabled=true",
            "--set",
            "ingress.tls.enabled=true",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "ingress.tls.secretName is required" in result.stderr


def test_gpu_limits_on_render_pods_only(rendered):
    for scenario, docs in rendered.items():
        for name, spec in pod_specs(docs):
            for c in spec["containers"]:
                has_gpu = "nvidia.com/gpu" in c["resources"].get("limits", {})
                expect = scenario == "gpu" and name == "render"
                assert has_gpu == expect, (scenario, name)
    render = one(rendered["gpu"], "Deployment", "render")
    spec = render["spec"]["template"]["spec"]
    assert container(render)["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container(render)["image"].endswith(":0.1.0-gpu")
    assert spec["runtimeClassName"] == "nvidia"
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    assert "podAntiAffinity" in spec["affinity"]
    cpu = one(rendered["cpu-only"], "Deployment", "render")
    assert container(cpu)["image"].endswith(":0.1.0")
    assert "tolerations" not in cpu["spec"]["template"]["spec"]
    assert "runtimeClassName" not in cpu["spec"]["template"]["spec"]


def test_grpc_probes_and_graceful_drain(rendered):
    for scenario, docs in rendered.items():
        for component, port in (("render", 50052), ("catalog", 50051)):
            c = container(one(docs, "Deployment", component))
            for probe in ("readinessProbe", "livenessProbe"):
                assert c[probe]["grpc"] == {"port": port}, (scenario, component, probe)
        render = one(docs, "Deployment", "render")
        c = container(render)
        assert c["startupProbe"]["grpc"] == {"port": 50052}
        sleep = int(c["lifecycle"]["preStop"]["exec"]["command"][1])
        # The pod must outlive the preStop pause plus the server's own drain of in-flight frames.
        assert render["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= sleep + 30
        assert render["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
        gateway = container(one(docs, "Deployment", "gateway"))
        assert gateway["readinessProbe"]["httpGet"]["path"] == "/api/health"


def test_render_service_is_headless_with_a_named_grpc_port(rendered):
    service = one(rendered["default"], "Service", "render")
    assert service["spec"]["clusterIP"] == "None"
    assert {
        "name": "grpc",
        "port": 50052,
        "targetPort": "grpc",
        "protocol": "TCP",
        "appProtocol": "grpc",
    } in service["spec"]["ports"]
    config = one(rendered["default"], "ConfigMap")["data"]
    assert config["VOXCAST_RENDER_ADDRS"] == "viewer-voxcast-render.imaging.svc:50052"
    assert config["VOXCAST_RENDER_DISCOVERY"] == "kubernetes"


def test_hpa_targets_the_render_deployment(rendered):
    hpa = one(rendered["default"], "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "viewer-voxcast-render",
    }
    assert hpa["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
        }
    ]
    assert "replicas" not in one(rendered["default"], "Deployment", "render")["spec"], (
        "the HPA owns the count"
    )
    gpu_hpa = one(rendered["gpu"], "HorizontalPodAutoscaler")
    assert gpu_hpa["spec"]["metrics"] == [
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": "voxcast_render_queue_depth"},
                "target": {"type": "AverageValue", "averageValue": "8"},
            },
        }
    ]
    assert (gpu_hpa["spec"]["minReplicas"], gpu_hpa["spec"]["maxReplicas"]) == (1, 4)
    assert find(rendered["cpu-only"], "HorizontalPodAutoscaler") == []
    assert one(rendered["cpu-only"], "Deployment", "render")["spec"]["replicas"] == 3
    pdb = next(p for p in find(rendered["default"], "PodDisruptionBudget", "render"))
    assert pdb["spec"]["maxUnavailable"] == 1


def test_network_policies_let_only_the_gateway_reach_render_and_catalog(rendered):
    docs = rendered["ingress-tls"]
    policies = {
        p["metadata"]["labels"]["app.kubernetes.io/component"]: p for p in find(docs, "NetworkPolicy")
    }
    assert set(policies) == {"render", "catalog", "gateway", "redis"}

    def grpc_sources(component):
        (rule,) = [
            r for r in policies[component]["spec"]["ingress"] if r["ports"][0]["port"] in ("grpc", "redis")
        ]
        assert all(set(peer) == {"podSelector"} for peer in rule["from"]), "pods of this release only"
        return sorted(
            peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for peer in rule["from"]
        )

    assert grpc_sources("render") == ["gateway", "test"]
    assert grpc_sources("catalog") == ["gateway", "render", "test"]
    assert grpc_sources("redis") == ["gateway"]
    for policy in policies.values():
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        for rule in policy["spec"]["ingress"]:
            for peer in rule.get("from", []):
                if "podSelector" in peer:
                    assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == RELEASE
    (gateway_rule,) = policies["gateway"]["spec"]["ingress"]
    assert gateway_rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    ]
    # The policies select the pods they mean to protect.
    for component in ("render", "catalog", "gateway"):
        pod_labels = one(docs, "Deployment", component)["spec"]["template"]["metadata"]["labels"]
        selector = policies[component]["spec"]["podSelector"]["matchLabels"]
        assert selector.items() <= pod_labels.items()


def test_secrets_never_in_config_maps(rendered):
    fields = {f"VOXCAST_{name.upper()}" for name in Settings.model_fields}
    secret_names = {"VOXCAST_SECRET_KEY", "VOXCAST_DATABASE_URL", "VOXCAST_REDIS_URL"}
    for scenario, docs in rendered.items():
        secret_values = [v for s in find(docs, "Secret") for v in s.get("stringData", {}).values()]
        for config_map in find(docs, "ConfigMap"):
            data = config_map["data"]
            assert set(data) <= fields, f"{scenario}: not a setting: {set(data) - fields}"
            assert not set(data) & secret_names
            for value in data.values():
                assert not any(secret in value for secret in secret_values if len(secret) > 3)
        for _, spec in pod_specs(docs):
            for c in spec["containers"]:
                for env in c.get("env", []):
                    if env["name"].startswith("VOXCAST_"):
                        assert env["name"] in fields, env["name"]
                    if env["name"] in secret_names and env["name"] != "VOXCAST_REDIS_URL":
                        assert "secretKeyRef" in env["valueFrom"], (scenario, env)
    secret = one(rendered["external-db"], "Secret")["stringData"]
    assert secret["VOXCAST_DATABASE_URL"] == (
        "postgresql+psycopg://voxcast:s3cret%2Fwith%3Aodd%40chars@postgres.db.svc:5432/voxcast"
    )
    assert secret["VOXCAST_REDIS_URL"] == "redis://:redispass@redis.cache.svc:6379/0"
    catalog_env = {e["name"] for e in container(one(rendered["external-db"], "Deployment", "catalog"))["env"]}
    render_env = {e["name"] for e in container(one(rendered["external-db"], "Deployment", "render"))["env"]}
    assert "VOXCAST_DATABASE_URL" in catalog_env and "VOXCAST_DATABASE_URL" not in render_env
    # The in-chart Redis: its password is a secret the URL refers to, never spelt out.
    gateway_env = container(one(rendered["ingress-tls"], "Deployment", "gateway"))["env"]
    url = next(e for e in gateway_env if e["name"] == "VOXCAST_REDIS_URL")
    assert url["value"] == "redis://:$(REDIS_PASSWORD)@viewer-voxcast-redis:6379/0"
    assert [e["name"] for e in gateway_env].index("REDIS_PASSWORD") < [e["name"] for e in gateway_env].index(
        "VOXCAST_REDIS_URL"
    ), "Kubernetes expands $(VAR) only from variables defined before"


def test_non_root_read_only_and_bounded_everywhere(rendered):
    for scenario, docs in rendered.items():
        for name, spec in pod_specs(docs):
            assert spec["securityContext"]["runAsNonRoot"] is True, (scenario, name)
            assert spec["securityContext"]["runAsUser"] != 0
            for c in spec["containers"]:
                sc = c["securityContext"]
                assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
                assert sc["capabilities"]["drop"] == ["ALL"]
                assert {"cpu", "memory"} <= set(c["resources"]["requests"]), (scenario, name)
                assert {"cpu", "memory"} <= set(c["resources"]["limits"]), (scenario, name)
            # A read-only root needs somewhere to write: /tmp and the data home are volumes.
            if name in ("render", "gateway", "catalog"):
                mounts = {m["mountPath"] for c in spec["containers"] for m in c["volumeMounts"]}
                assert {"/tmp", "/data"} <= mounts, (scenario, name)


def test_catalog_storage(rendered):
    default = rendered["default"]
    claim = one(default, "PersistentVolumeClaim")
    assert claim["spec"]["resources"]["requests"]["storage"] == "50Gi"
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep", "studies survive uninstall"
    catalog = one(default, "Deployment", "catalog")
    assert catalog["spec"]["strategy"]["type"] == "Recreate", "a ReadWriteOnce claim is mounted by one pod"
    volumes = {v["name"]: v for v in catalog["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    shared = one(rendered["external-db"], "Deployment", "catalog")
    assert shared["spec"]["strategy"]["type"] == "RollingUpdate" and shared["spec"]["replicas"] == 2


def test_gateway_may_watch_endpointslices(rendered, helm):
    docs = rendered["default"]
    role = one(docs, "Role")
    assert role["rules"] == [
        {
            "apiGroups": ["discovery.k8s.io"],
            "resources": ["endpointslices"],
            "verbs": ["get", "list", "watch"],
        }
    ]
    binding = one(docs, "RoleBinding")
    gateway = one(docs, "Deployment", "gateway")["spec"]["template"]["spec"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": gateway["serviceAccountName"], "namespace": "imaging"}
    ]
    accounts = {
        a["metadata"]["name"]: a["automountServiceAccountToken"] for a in find(docs, "ServiceAccount")
    }
    assert accounts == {
        "viewer-voxcast-gateway": True,
        "viewer-voxcast-render": False,
        "viewer-voxcast-catalog": False,
    }

    static = template(helm, "--set", "gateway.renderDiscovery=static")
    assert find(static, "Role") == [] and find(static, "RoleBinding") == []
    assert all(a["automountServiceAccountToken"] is False for a in find(static, "ServiceAccount"))


def test_ingress_keeps_websockets_open_with_tls(rendered):
    ingress = one(rendered["ingress-tls"], "Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [{"secretName": "viewer-tls", "hosts": ["viewer.hospital.example"]}]
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600"
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "viewer.hospital.example"
    assert rule["http"]["paths"][0]["backend"]["service"] == {
        "name": "viewer-voxcast-gateway",
        "port": {"name": "http"},
    }
    assert find(rendered["default"], "Ingress") == []


def test_helm_test_pods_check_every_service(rendered):
    pods = find(rendered["default"], "Pod")
    assert sorted(p["metadata"]["name"] for p in pods) == [
        "viewer-voxcast-test-catalog",
        "viewer-voxcast-test-gateway",
        "viewer-voxcast-test-render",
    ]
    for pod in pods:
        assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
        (c,) = pod["spec"]["containers"]
        assert c["command"][:2] == ["python", "-c"]
        compile(c["command"][2], pod["metadata"]["name"], "exec")  # the check script is valid Python
    targets = {p["metadata"]["name"]: p["spec"]["containers"][0]["command"][3] for p in pods}
    assert targets["viewer-voxcast-test-render"] == "viewer-voxcast-render:50052"
    assert targets["viewer-voxcast-test-gateway"] == "http://viewer-voxcast-gateway:80/api/health"


def test_names_fit_in_63_characters(helm):
    long_release = "a-very-long-release-name-for-the-radiology-department"  # 53, Helm's maximum
    for doc in template(helm, "--set", "redis.enabled=true", release=long_release):
        name = doc["metadata"]["name"]
        assert len(name) <= 63 and not name.endswith("-"), name
    names = [d["metadata"]["name"] for d in template(helm, release=long_release) if d["kind"] == "Deployment"]
    assert len(set(names)) == 3 and all(n.endswith(("-gateway", "-render", "-catalog")) for n in names)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["-f", str(CHART / "ci" / "ingress-tls-values.yaml")], "https://viewer.hospital.example/"),
        ([], "kubectl port-forward -n imaging service/viewer-voxcast-gateway 8080:80"),
        (
            ["--set", "gateway.service.type=LoadBalancer"],
            "kubectl get service viewer-voxcast-gateway -n imaging",
        ),
    ],
)
def test_notes_say_how_to_reach_the_viewer(helm, tmp_path, args, expected):
    notes = render_notes(helm, tmp_path, *args)
    assert expected in notes
    assert "voxcast ops status --namespace imaging --release viewer" in notes
    assert "helm test viewer -n imaging" in notes


@pytest.mark.parametrize(
    "args, warned",
    [
        (["--set", "ingress.enabled=true"], True),
        (["--set", "ingress.enabled=true", "--set", "gateway.trustedProxies=10.244.0.0/16"], False),
        (["-f", str(CHART / "ci" / "ingress-tls-values.yaml")], False),
        ([], False),
    ],
)
def test_notes_warn_of_an_ingress_without_trusted_proxies(helm, tmp_path, args, warned):
    """Behind the Ingress with no trusted proxy, every client has the controller's address: the
    sign-in throttle's per-address limit would lock everyone out at once."""
    notes = render_notes(helm, tmp_path, *args)
    assert ("gateway.trustedProxies is empty" in notes) == warned


def render_notes(helm: str, tmp_path, *args: str) -> str:
    # `helm template` does not print NOTES.txt and `helm install --dry-run` needs a cluster, so a
    # copy of the chart renders the notes through `tpl` into a ConfigMap.
    chart = tmp_path / "voxcast"
    shutil.copytree(CHART, chart)
    shutil.copy(chart / "templates" / "NOTES.txt", chart / "notes.txt")
    (chart / "templates" / "notes-under-test.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\n"
        'data:\n  notes: {{ tpl (.Files.Get "notes.txt") . | quote }}\n'
    )
    result = subprocess.run(
        [
            helm,
            "template",
            RELEASE,
            str(chart),
            "-n",
            "imaging",
            "--show-only",
            "templates/notes-under-test.yaml",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["data"]["notes"]


def test_every_values_key_is_documented():
    """Each key of values.yaml has a comment right above it, except the contents of a documented
    block described as a whole (a probe, resources, annotations: none of its keys has a comment)."""
    keys = []  # (line number, indent, text, documented, parent index)
    stack: list[int] = []
    previous = ""
    for number, line in enumerate((CHART / "values.yaml").read_text().splitlines(), 1):
        stripped = line.strip()
        match = re.match(r"^(\s*)([\w./-]+):", line)
        if match and not stripped.startswith("#"):
            indent = len(match.group(1))
            while stack and keys[stack[-1]][1] >= indent:
                stack.pop()
            keys.append((number, indent, stripped, previous.startswith("#"), stack[-1] if stack else None))
            stack.append(len(keys) - 1)
        if stripped:
            previous = stripped

    def free_form(index) -> bool:
        children = [k for k in keys if k[4] == index]
        return keys[index][3] and not any(child[3] for child in children)

    def covered(index) -> bool:
        parent = keys[index][4]
        return parent is not None and (free_form(parent) or covered(parent))

    undocumented = [
        f"{n}: {text}" for i, (n, _, text, doc, _) in enumerate(keys) if not doc and not covered(i)
    ]
    assert not undocumented, "undocumented values:\n" + "\n".join(undocumented)


def _test_pod_command(docs, target: str) -> list[str]:
    pod = next(p for p in find(docs, "Pod") if p["metadata"]["name"].endswith(f"-test-{target}"))
    return pod["spec"]["containers"][0]["command"]


@pytest.mark.parametrize("status, code", [("SERVING", 0), ("NOT_SERVING", 1)])
def test_helm_test_grpc_check_against_a_health_service(rendered, status, code):
    """The render/catalog test pods' script, run against the standard gRPC health service."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    servicer.set("", health_pb2.HealthCheckResponse.ServingStatus.Value(status))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        command = _test_pod_command(rendered["default"], "render")
        result = subprocess.run(
            [sys.executable, "-c", command[2], f"127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        server.stop(None)
    assert result.returncode == code, result.stderr
    assert status in result.stdout


@pytest.mark.parametrize("status, code", [("ok", 0), ("degraded", 1)])
def test_helm_test_gateway_check_wants_the_whole_chain(rendered, status, code):
    import sys

    body = json.dumps({"status": status, "catalog": {"reachable": status == "ok"}, "render": []}).encode()

    class Health(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/api/health" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        command = _test_pod_command(rendered["default"], "gateway")
        url = command[3].replace("http://viewer-voxcast-gateway:80", f"http://127.0.0.1:{server.server_port}")
        result = subprocess.run(
            [sys.executable, "-c", command[2], url], capture_output=True, text=True, timeout=60
        )
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == code, result.stderr
    assert f'"status": "{status}"' in result.stdout
