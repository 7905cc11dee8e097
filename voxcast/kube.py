"""The Kubernetes API as voxcast uses it: render-pod discovery through EndpointSlices (for the
gateway) and the render Deployment's state and scale (for `voxcast ops`).

Everything goes through the official `kubernetes` client (the `k8s` extra); inside a pod it uses
the pod's ServiceAccount, elsewhere the kubeconfig.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from voxcast.config import Settings, get_settings

log = logging.getLogger(__name__)

OnChange = Callable[[list[str]], None]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
# Labels the Helm chart puts on every render pod, Deployment and HPA.
RENDER_SELECTOR = "app.kubernetes.io/part-of=voxcast,app.kubernetes.io/component=render"
INSTANCE_LABEL = "app.kubernetes.io/instance"
SERVICEACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class KubernetesError(Exception):
    """A Kubernetes API problem worth one line to the user (no cluster, no permission, not found)."""


@dataclass
class Cluster:
    """An API client and the namespace to work in."""

    api_client: object
    namespace: str


def connect(
    kubeconfig: str | None = None, context: str | None = None, namespace: str | None = None
) -> Cluster:
    """Connect with the in-cluster ServiceAccount when running in a pod, else with the kubeconfig
    (`kubeconfig`, $KUBECONFIG or ~/.kube/config). The namespace defaults to the pod's own, or the
    kubeconfig context's, or "default"."""
    import yaml
    from kubernetes import client, config

    in_cluster = kubeconfig is None and context is None and "KUBERNETES_SERVICE_HOST" in os.environ
    if in_cluster:
        configuration = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException as exc:
            raise KubernetesError(f"in-cluster Kubernetes configuration is unusable: {exc}") from exc
        default_namespace = (
            SERVICEACCOUNT_NAMESPACE.read_text().strip() if SERVICEACCOUNT_NAMESPACE.exists() else "default"
        )
    else:
        path = kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or "~/.kube/config"
        path = os.path.expanduser(path)
        if not os.path.exists(path):
            raise KubernetesError(
                f"no Kubernetes cluster configured: {path} does not exist and this is not a pod "
                "(set KUBECONFIG or pass --kubeconfig)"
            )
        configuration = client.Configuration()
        try:
            contexts, active = config.list_kube_config_contexts(config_file=path)
            chosen = active if context is None else next((c for c in contexts if c["name"] == context), None)
            if chosen is None:
                raise KubernetesError(f"kubeconfig {path} has no context {context!r}")
            config.load_kube_config(config_file=path, context=context, client_configuration=configuration)
        except (config.ConfigException, OSError, ValueError, yaml.YAMLError) as exc:
            raise KubernetesError(f"cannot use kubeconfig {path}: {exc}") from exc
        default_namespace = chosen.get("context", {}).get("namespace") or "default"
    return Cluster(client.ApiClient(configuration), namespace or default_namespace)


def parse_service_address(address: str) -> tuple[str, str | None]:
    """(service, namespace or None) from a render address naming the Service:
    `name`, `name:port`, `name.namespace`, `name.namespace.svc[.cluster.local]:port`."""
    host = address.strip().rsplit(":", 1)[0] if ":" in address else address.strip()
    parts = host.split(".")
    if not host or not all(parts):
        raise ValueError(f"not a Kubernetes Service address: {address!r}")
    if len(parts) > 2 and parts[2] != "svc":
        raise ValueError(
            f"not a Kubernetes Service address: {address!r} (expected name[.namespace[.svc...]][:port])"
        )
    return parts[0], parts[1] if len(parts) > 1 else None


def ready_addresses(slices, port_name: str = "grpc") -> list[str]:
    """Sorted, de-duplicated "ip:port" of the ready endpoints of EndpointSlices (client models)."""
    found = set()
    for endpoint_slice in slices:
        ports = endpoint_slice.ports or []
        port = next((p.port for p in ports if p.name == port_name), None)
        if port is None and len(ports) == 1:
            port = ports[0].port
        if port is None:
            continue
        for endpoint in endpoint_slice.endpoints or []:
            conditions = endpoint.conditions
            # The API says a missing `ready` means ready; terminating endpoints are never ready.
            if conditions is not None and conditions.ready is False:
                continue
            for ip in endpoint.addresses or []:
                found.add(f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}")
    return sorted(found)


class KubernetesRenderDiscovery:
    """The ready render pods behind the Service named by VOXCAST_RENDER_ADDRS, followed live.

    `start(on_change)` lists the Service's EndpointSlices, calls `on_change` with the ready
    "ip:port" addresses, then watches them from a background thread and calls `on_change` again
    whenever the set changes (a pod became ready, stopped being ready, or went away). A pod that
    is terminating leaves the set first, so the gateway routes new work elsewhere while the pod
    finishes its in-flight frames. Expired watches re-list; API errors are retried."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        cluster: Cluster | None = None,
        port_name: str = "grpc",
        retry_seconds: float = 2.0,
        watch_seconds: int = 300,
    ) -> None:
        settings = settings or get_settings()
        addresses = settings.render_addr_list
        if len(addresses) != 1:
            raise ValueError(
                "VOXCAST_RENDER_DISCOVERY=kubernetes needs VOXCAST_RENDER_ADDRS to name the render Service "
                f"(one name[.namespace]:port), got {settings.render_addrs!r}"
            )
        self.service, namespace = parse_service_address(addresses[0])
        if cluster is None:
            cluster = connect(namespace=namespace)
        self.namespace = namespace or cluster.namespace
        self.cluster = cluster
        self.port_name = port_name
        self.retry_seconds = retry_seconds
        self.watch_seconds = watch_seconds
        self.addresses: list[str] = []
        self._slices: dict[str, object] = {}
        self._on_change: OnChange | None = None
        self._stop = threading.Event()
        self._watch = None
        self._thread: threading.Thread | None = None

    def start(self, on_change: OnChange) -> None:
        if self._thread is not None:
            raise RuntimeError("discovery already started")
        self._on_change = on_change
        self._stop.clear()
        try:
            resource_version = self._list()
        except Exception as exc:  # the watch thread keeps retrying; the gateway starts empty
            log.warning("listing EndpointSlices of %s/%s failed: %s", self.namespace, self.service, exc)
            resource_version = None
        self._publish(force=True)
        self._thread = threading.Thread(
            target=self._run, args=(resource_version,), name=f"endpointslices-{self.service}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """End the watch and wait for its thread. The watch may be between requests when this is
        called, so its socket is shut down repeatedly until the thread has seen the stop flag."""
        self._stop.set()
        thread = self._thread
        deadline = time.monotonic() + timeout
        while thread is not None and thread.is_alive() and time.monotonic() < deadline:
            watch = self._watch
            if watch is not None:
                watch.stop()
            thread.join(0.05)
        self._thread = None

    # -- internals ---------------------------------------------------------------------------

    def _api(self):
        from kubernetes import client

        return client.DiscoveryV1Api(self.cluster.api_client)

    def _list(self) -> str:
        result = self._api().list_namespaced_endpoint_slice(
            self.namespace, label_selector=f"{SERVICE_NAME_LABEL}={self.service}"
        )
        self._slices = {s.metadata.name: s for s in result.items}
        return result.metadata.resource_version

    def _publish(self, force: bool = False) -> None:
        addresses = ready_addresses(self._slices.values(), self.port_name)
        if addresses != self.addresses or force:
            added = sorted(set(addresses) - set(self.addresses))
            removed = sorted(set(self.addresses) - set(addresses))
            self.addresses = addresses
            if added or removed:
                log.info("render pods of %s: +%s -%s", self.service, added, removed)
            if self._on_change is not None:
                self._on_change(list(addresses))

    def _run(self, resource_version: str | None) -> None:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        while not self._stop.is_set():
            try:
                if resource_version is None:
                    resource_version = self._list()
                    self._publish()
                self._watch = watch.Watch()
                for event in self._watch.stream(
                    self._api().list_namespaced_endpoint_slice,
                    self.namespace,
                    label_selector=f"{SERVICE_NAME_LABEL}={self.service}",
                    resource_version=resource_version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=self.watch_seconds,
                ):
                    kind, obj = event["type"], event["object"]
                    if kind in ("ADDED", "MODIFIED"):
                        self._slices[obj.metadata.name] = obj
                    elif kind == "DELETED":
                        self._slices.pop(obj.metadata.name, None)
                    if self._watch.resource_version:
                        resource_version = self._watch.resource_version
                    if kind != "BOOKMARK":
                        self._publish()
                    if self._stop.is_set():
                        break
                # The server ended the watch (its timeout): resume from the last version seen.
            except ApiException as exc:
                if exc.status == 410:  # our version is too old: start over from a fresh list
                    resource_version = None
                    continue
                self._retry(
                    f"watching EndpointSlices of {self.namespace}/{self.service}: {exc.status} {exc.reason}"
                )
                resource_version = None
            except Exception as exc:
                if self._stop.is_set():
                    break
                self._retry(f"watching EndpointSlices of {self.namespace}/{self.service}: {exc}")
                resource_version = None
            finally:
                self._watch = None

    def _retry(self, message: str) -> None:
        log.warning("%s; retrying in %.0f s", message, self.retry_seconds)
        self._stop.wait(self.retry_seconds)


# -- ops: the render Deployment ------------------------------------------------------------------


@dataclass
class RenderPod:
    name: str
    phase: str
    ready: bool
    ip: str | None
    node: str | None
    restarts: int
    metrics: dict[str, float] = field(default_factory=dict)
    metrics_error: str | None = None


@dataclass
class RenderStatus:
    namespace: str
    deployment: str
    desired: int
    ready: int
    hpa: dict | None
    pods: list[RenderPod]


# Prometheus samples `voxcast ops status` shows, by the render service's metric names.
STATUS_METRICS = (
    "voxcast_render_queue_depth",
    "voxcast_render_cache_bytes",
    "voxcast_render_cache_limit_bytes",
    "voxcast_render_cache_volumes",
    "voxcast_render_gpu_memory_bytes",
)


class RenderOps:
    """Status and scale of one voxcast release's render Deployment."""

    def __init__(self, cluster: Cluster, release: str | None = None, metrics_timeout: float = 3.0) -> None:
        from kubernetes import client

        self.cluster = cluster
        self.namespace = cluster.namespace
        self.apps = client.AppsV1Api(cluster.api_client)
        self.core = client.CoreV1Api(cluster.api_client)
        self.autoscaling = client.AutoscalingV2Api(cluster.api_client)
        self.metrics_timeout = metrics_timeout
        self.deployment = self._find_deployment(release)

    def _call(self, what: str, fn, *args, **kwargs):
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            if exc.status in (401, 403):
                raise KubernetesError(
                    f"not allowed to {what} in namespace {self.namespace}: {exc.reason}"
                ) from exc
            raise KubernetesError(
                f"cannot {what} in namespace {self.namespace}: {exc.status} {exc.reason}"
            ) from exc
        except HTTPError as exc:
            host = self.cluster.api_client.configuration.host
            raise KubernetesError(f"cannot reach the Kubernetes API at {host}: {exc}") from exc

    def _find_deployment(self, release: str | None):
        selector = RENDER_SELECTOR + (f",{INSTANCE_LABEL}={release}" if release else "")
        found = self._call(
            "list Deployments", self.apps.list_namespaced_deployment, self.namespace, label_selector=selector
        ).items
        if not found:
            which = f"release {release!r}" if release else "any voxcast release"
            raise KubernetesError(f"no render Deployment of {which} in namespace {self.namespace}")
        if len(found) > 1:
            releases = sorted((d.metadata.labels or {}).get(INSTANCE_LABEL, "?") for d in found)
            raise KubernetesError(
                f"several voxcast releases in namespace {self.namespace} ({', '.join(releases)}): "
                "pass --release"
            )
        return found[0]

    @property
    def name(self) -> str:
        return self.deployment.metadata.name

    def hpa(self):
        """The HorizontalPodAutoscaler that scales the render Deployment, or None."""
        hpas = self._call(
            "list HorizontalPodAutoscalers",
            self.autoscaling.list_namespaced_horizontal_pod_autoscaler,
            self.namespace,
        ).items
        for hpa in hpas:
            ref = hpa.spec.scale_target_ref
            if ref.kind == "Deployment" and ref.name == self.name:
                return hpa
        return None

    def status(self, with_metrics: bool = True) -> RenderStatus:
        dep = self._call("read Deployment", self.apps.read_namespaced_deployment, self.name, self.namespace)
        selector = ",".join(f"{k}={v}" for k, v in sorted(dep.spec.selector.match_labels.items()))
        pods = self._call(
            "list Pods", self.core.list_namespaced_pod, self.namespace, label_selector=selector
        ).items
        metrics_port = _container_port(dep, "metrics")
        rows = []
        for pod in sorted(pods, key=lambda p: p.metadata.name):
            statuses = pod.status.container_statuses or []
            ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
            row = RenderPod(
                name=pod.metadata.name,
                phase=pod.status.phase or "Unknown",
                ready=ready,
                ip=pod.status.pod_ip,
                node=pod.spec.node_name,
                restarts=sum(c.restart_count or 0 for c in statuses),
            )
            if with_metrics and metrics_port and pod.status.phase == "Running":
                row.metrics, row.metrics_error = self._pod_metrics(pod, metrics_port)
            rows.append(row)
        hpa = self.hpa()
        hpa_info = None
        if hpa is not None:
            hpa_info = {
                "name": hpa.metadata.name,
                "min": hpa.spec.min_replicas,
                "max": hpa.spec.max_replicas,
                "current": hpa.status.current_replicas if hpa.status else None,
                "desired": hpa.status.desired_replicas if hpa.status else None,
            }
        return RenderStatus(
            namespace=self.namespace,
            deployment=self.name,
            desired=dep.spec.replicas or 0,
            ready=(dep.status.ready_replicas or 0) if dep.status else 0,
            hpa=hpa_info,
            pods=rows,
        )

    def _pod_metrics(self, pod, port: int) -> tuple[dict[str, float], str | None]:
        """The pod's status metrics: straight from its IP (inside the cluster), else through the API
        server's pod proxy (from a workstation)."""
        import httpx

        errors = []
        if pod.status.pod_ip:
            url = f"http://{pod.status.pod_ip}:{port}/metrics"
            try:
                reply = httpx.get(url, timeout=self.metrics_timeout)
                reply.raise_for_status()
                return parse_metrics(reply.text), None
            except httpx.HTTPError as exc:
                errors.append(f"{url}: {exc.__class__.__name__}")
        try:
            text = self.core.connect_get_namespaced_pod_proxy_with_path(
                f"{pod.metadata.name}:{port}",
                self.namespace,
                "metrics",
                _request_timeout=self.metrics_timeout,
            )
            return parse_metrics(text), None
        except Exception as exc:  # unreachable metrics leave the row without figures, never fail status
            errors.append(f"API proxy: {getattr(exc, 'status', '') or exc.__class__.__name__}")
        return {}, "; ".join(errors)

    def scale(self, replicas: int, hpa_min: bool = False) -> str:
        """Set the number of render pods; returns what was done, in words.

        With an HPA in charge, patching the Deployment would be undone at its next sync, so this
        refuses unless `hpa_min`, which raises the HPA's floor (minReplicas) instead."""
        if replicas < 0:
            raise KubernetesError("--replicas must be 0 or more")
        hpa = self.hpa()
        if hpa is not None:
            if not hpa_min:
                raise KubernetesError(
                    f"HorizontalPodAutoscaler {hpa.metadata.name} owns the render replica count "
                    f"({hpa.spec.min_replicas}-{hpa.spec.max_replicas}); rerun with --hpa-min to set its "
                    "minReplicas, or change render.autoscaling in the Helm values"
                )
            if replicas < 1:
                raise KubernetesError("an HPA's minReplicas must be at least 1")
            patch = {"spec": {"minReplicas": replicas}}
            if replicas > hpa.spec.max_replicas:
                patch["spec"]["maxReplicas"] = replicas
            self._call(
                "patch HorizontalPodAutoscaler",
                self.autoscaling.patch_namespaced_horizontal_pod_autoscaler,
                hpa.metadata.name,
                self.namespace,
                patch,
            )
            top = max(replicas, hpa.spec.max_replicas)
            return (
                f"HorizontalPodAutoscaler {hpa.metadata.name}: "
                f"minReplicas {hpa.spec.min_replicas} -> {replicas} (max {top})"
            )
        current = self._call(
            "read Deployment scale", self.apps.read_namespaced_deployment_scale, self.name, self.namespace
        )
        self._call(
            "patch Deployment scale",
            self.apps.patch_namespaced_deployment_scale,
            self.name,
            self.namespace,
            {"spec": {"replicas": replicas}},
        )
        return f"Deployment {self.name}: replicas {current.spec.replicas} -> {replicas}"


def _container_port(deployment, name: str) -> int | None:
    for container in deployment.spec.template.spec.containers:
        for port in container.ports or []:
            if port.name == name:
                return port.container_port
    return None


def parse_metrics(text: str) -> dict[str, float]:
    """The STATUS_METRICS samples of a Prometheus text exposition (unlabelled samples only)."""
    from prometheus_client.parser import text_string_to_metric_families

    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in STATUS_METRICS and not sample.labels:
                values[sample.name] = sample.value
    return values
