"""Render-pod discovery through EndpointSlices, against the API server stand-in."""

from __future__ import annotations

import threading
import time

import pytest

from voxcast.config import Settings
from voxcast.kube import KubernetesError, KubernetesRenderDiscovery, connect, parse_service_address

from .conftest import NAMESPACE
from .objects import ENDPOINTSLICES, endpoint_slice

SERVICE = "viewer-voxcast-render"


class Recorder:
    """Collects on_change calls and lets the test wait for a given address list."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.changed = threading.Condition()

    def __call__(self, addresses: list[str]) -> None:
        with self.changed:
            self.calls.append(addresses)
            self.changed.notify_all()

    def wait_for(self, expected: list[str], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with self.changed:
            while not self.calls or self.calls[-1] != expected:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"addresses never became {expected}; calls: {self.calls}")
                self.changed.wait(left)


@pytest.fixture
def discovery(kubeconfig):
    settings = Settings(render_discovery="kubernetes", render_addrs=f"{SERVICE}.{NAMESPACE}.svc:50052")
    d = KubernetesRenderDiscovery(settings, cluster=connect(kubeconfig), retry_seconds=0.1)
    yield d
    d.stop()


def test_follows_pods_as_they_become_ready_and_go_away(kube_api, discovery):
    kube_api.put(ENDPOINTSLICES, endpoint_slice("render-a", NAMESPACE, SERVICE, [("10.0.0.1", True)]))
    # Slices of other Services or namespaces are not ours.
    kube_api.put(ENDPOINTSLICES, endpoint_slice("other", NAMESPACE, "catalog", [("10.9.9.9", True)]))
    kube_api.put(ENDPOINTSLICES, endpoint_slice("render-x", "elsewhere", SERVICE, [("10.8.8.8", True)]))
    seen = Recorder()
    discovery.start(seen)
    assert seen.calls == [["10.0.0.1:50052"]], "start() reports the current pods before returning"

    # A new pod is scheduled (not ready yet), then passes its readiness probe.
    slice_a = endpoint_slice("render-a", NAMESPACE, SERVICE, [("10.0.0.1", True), ("10.0.0.2", False)])
    kube_api.put(ENDPOINTSLICES, slice_a)
    slice_a = endpoint_slice("render-a", NAMESPACE, SERVICE, [("10.0.0.1", True), ("10.0.0.2", True)])
    kube_api.put(ENDPOINTSLICES, slice_a)
    seen.wait_for(["10.0.0.1:50052", "10.0.0.2:50052"])
    assert ["10.0.0.1:50052"] == seen.calls[0] and len(seen.calls) == 2, "a not-ready pod is never announced"

    # A second slice (large Services are split) adds its pods; a missing condition means ready.
    kube_api.put(ENDPOINTSLICES, endpoint_slice("render-b", NAMESPACE, SERVICE, [("10.0.1.1", None)]))
    seen.wait_for(["10.0.0.1:50052", "10.0.0.2:50052", "10.0.1.1:50052"])

    # Pod 1 starts terminating: it leaves at once, the others stay (their sessions are untouched).
    kube_api.put(
        ENDPOINTSLICES,
        endpoint_slice("render-a", NAMESPACE, SERVICE, [("10.0.0.1", False), ("10.0.0.2", True)]),
    )
    seen.wait_for(["10.0.0.2:50052", "10.0.1.1:50052"])
    kube_api.delete(ENDPOINTSLICES, NAMESPACE, "render-b")
    seen.wait_for(["10.0.0.2:50052"])
    assert discovery.addresses == ["10.0.0.2:50052"]


def test_relists_after_the_watch_expires(kube_api, discovery):
    kube_api.put(ENDPOINTSLICES, endpoint_slice("render-a", NAMESPACE, SERVICE, [("10.0.0.1", True)]))
    seen = Recorder()
    discovery.start(seen)
    lists = sum(1 for verb, path in kube_api.requests if "endpointslices" in path and "watch" not in path)
    kube_api.expire(ENDPOINTSLICES, endpoint_slice("render-a", NAMESPACE, SERVICE, [("10.0.0.3", True)]))
    seen.wait_for(["10.0.0.3:50052"])
    kube_api.put(
        ENDPOINTSLICES,
        endpoint_slice("render-a", NAMESPACE, SERVICE, [("10.0.0.3", True), ("10.0.0.4", True)]),
    )
    seen.wait_for(["10.0.0.3:50052", "10.0.0.4:50052"])
    relists = sum(1 for verb, path in kube_api.requests if "endpointslices" in path and "watch" not in path)
    assert relists == lists + 1, "a 410 Gone leads to exactly one new list"


def test_starts_empty_and_retries_while_the_api_refuses(kube_api, kubeconfig):
    kube_api.put(ENDPOINTSLICES, endpoint_slice("render-a", NAMESPACE, SERVICE, [("10.0.0.1", True)]))
    token = kube_api.token
    kube_api.token = "rotated"  # every call is now 401
    settings = Settings(render_discovery="kubernetes", render_addrs=f"{SERVICE}:50052")
    d = KubernetesRenderDiscovery(settings, cluster=connect(kubeconfig), retry_seconds=0.05)
    seen = Recorder()
    try:
        d.start(seen)
        assert seen.calls == [[]], "the gateway starts with no render pods rather than failing"
        assert d.namespace == NAMESPACE, "the namespace comes from the kubeconfig context"
        kube_api.token = token
        seen.wait_for(["10.0.0.1:50052"])
    finally:
        d.stop()


def test_stop_ends_the_watch(kube_api, discovery):
    discovery.start(Recorder())
    thread = discovery._thread
    discovery.stop()
    assert not thread.is_alive(), "stop() ends a watch the server would have kept open for minutes"


def test_the_service_is_named_by_the_render_address():
    assert parse_service_address("viewer-voxcast-render.imaging.svc:50052") == (
        "viewer-voxcast-render",
        "imaging",
    )
    assert parse_service_address("render.imaging.svc.cluster.local:50052") == ("render", "imaging")
    assert parse_service_address("render:50052") == ("render", None)
    assert parse_service_address("render") == ("render", None)
    for bad in ("", "10.0.0.1:50052", "render..svc:1", "host.example.com:50052"):
        with pytest.raises(ValueError, match="not a Kubernetes Service address"):
            parse_service_address(bad)
    with pytest.raises(ValueError, match="one name"):
        KubernetesRenderDiscovery(Settings(render_discovery="kubernetes", render_addrs="a:1,b:1"))


def test_clear_error_outside_a_cluster(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(KubernetesError, match="no Kubernetes cluster configured"):
        connect()
    broken = tmp_path / "broken"
    broken.write_text("clusters: [}")
    with pytest.raises(KubernetesError, match="cannot use kubeconfig"):
        connect(str(broken))


def test_inside_a_pod_the_service_account_is_used(tmp_path, monkeypatch):
    from kubernetes.config import incluster_config

    import voxcast.kube

    token, cert, namespace = tmp_path / "token", tmp_path / "ca.crt", tmp_path / "namespace"
    token.write_text("pod-token")
    cert.write_text("not used before a request")
    namespace.write_text("imaging\n")
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(cert))
    monkeypatch.setattr(voxcast.kube, "SERVICEACCOUNT_NAMESPACE", namespace)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    cluster = connect()
    configuration = cluster.api_client.configuration
    assert cluster.namespace == "imaging"
    assert configuration.host == "https://10.96.0.1:443"
    assert configuration.api_key["BearerToken"].lower() == "bearer pod-token"  # re-read as the token rotates
    assert connect(namespace="other").namespace == "other"
