"""Kubernetes objects shaped like the ones the chart's resources produce in a cluster."""

from __future__ import annotations

ENDPOINTSLICES = ("apis/discovery.k8s.io", "v1", "endpointslices")
DEPLOYMENTS = ("apis/apps", "v1", "deployments")
HPAS = ("apis/autoscaling", "v2", "horizontalpodautoscalers")
PODS = ("api", "v1", "pods")

RELEASE = "viewer"
RENDER = f"{RELEASE}-voxcast-render"


def render_labels(release: str = RELEASE) -> dict:
    return {
        "app.kubernetes.io/name": "voxcast",
        "app.kubernetes.io/instance": release,
        "app.kubernetes.io/component": "render",
        "app.kubernetes.io/part-of": "voxcast",
    }


def endpoint_slice(name: str, namespace: str, service: str, endpoints, port: int = 50052) -> dict:
    """`endpoints`: (ip, ready) pairs; ready None leaves the condition out (the API's "unknown")."""
    items = []
    for ip, ready in endpoints:
        conditions = {} if ready is None else {"ready": ready, "serving": ready, "terminating": not ready}
        items.append({"addresses": [ip], "conditions": conditions})
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "kubernetes.io/service-name": service,
                "endpointslice.kubernetes.io/managed-by": "test",
            },
        },
        "addressType": "IPv4",
        "endpoints": items,
        "ports": [
            {"name": "metrics", "port": 9090, "protocol": "TCP"},
            {"name": "grpc", "port": port, "protocol": "TCP"},
        ],
    }


def render_deployment(
    namespace: str, replicas: int = 2, release: str = RELEASE, metrics_port: int = 9090
) -> dict:
    labels = render_labels(release)
    selector = {k: labels[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance")}
    selector["app.kubernetes.io/component"] = "render"
    return {
        "metadata": {"name": f"{release}-voxcast-render", "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "render",
                            "image": "ghcr.io/voxcast/voxcast-render:0.1.0",
                            "ports": [
                                {"name": "grpc", "containerPort": 50052},
                                {"name": "metrics", "containerPort": metrics_port},
                            ],
                        }
                    ]
                },
            },
        },
        "status": {"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas},
    }


def render_pod(namespace: str, name: str, ip: str, ready: bool = True, restarts: int = 0) -> dict:
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": render_labels()},
        "spec": {"nodeName": "gpu-node-1", "containers": [{"name": "render", "image": "render"}]},
        "status": {
            "phase": "Running",
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [
                {
                    "name": "render",
                    "ready": ready,
                    "restartCount": restarts,
                    "image": "render",
                    "imageID": "",
                }
            ],
        },
    }


def render_hpa(namespace: str, minimum: int = 2, maximum: int = 8) -> dict:
    return {
        "metadata": {"name": RENDER, "namespace": namespace, "labels": render_labels()},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": RENDER},
            "minReplicas": minimum,
            "maxReplicas": maximum,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                }
            ],
        },
        "status": {"currentReplicas": minimum, "desiredReplicas": minimum},
    }
