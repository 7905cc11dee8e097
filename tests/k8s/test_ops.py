"""`voxcast ops status` and `voxcast ops scale` against the API server stand-in, with render pods'
metrics served by the render service's own Prometheus exporter."""

from __future__ import annotations

import json

import pytest
from voxcast.render.metrics import RenderMetrics

from voxcast.cli import main

from .conftest import NAMESPACE
from .objects import DEPLOYMENTS, HPAS, PODS, RENDER, render_deployment, render_hpa, render_pod

GiB = 2**30


@pytest.fixture
def exporters():
    """Two render pods' metrics exporters on loopback ports: (port, metrics) each."""
    started = []
    for queue, cache, gpu in ((3, 2 * GiB, 0), (0, 1 * GiB, 3 * GiB)):
        metrics = RenderMetrics()
        metrics.queue_depth.set(queue)
        metrics.cache_bytes.set(cache)
        metrics.cache_limit.set(4 * GiB)
        metrics.cache_volumes.set(2)
        if gpu:
            metrics.watch_gpu_memory(lambda gpu=gpu: gpu)
        server, thread = metrics.serve_http(0, addr="127.0.0.1")
        started.append((server, thread))
    yield [s.server_port for s, _ in started]
    for server, thread in started:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def cluster(kube_api, exporters):
    """A release `viewer` with two render pods: one whose metrics answer on its IP (seen from
    inside the cluster), one reachable only through the API server's pod proxy."""
    direct, proxied = exporters
    kube_api.put(DEPLOYMENTS, render_deployment(NAMESPACE, replicas=2, metrics_port=direct))
    kube_api.put(PODS, render_pod(NAMESPACE, f"{RENDER}-a", "127.0.0.1"))
    # 127.0.0.3 answers nothing on that port; the proxy reaches the pod.
    kube_api.put(PODS, render_pod(NAMESPACE, f"{RENDER}-b", "127.0.0.3", ready=False, restarts=2))
    kube_api.proxy_targets[(NAMESPACE, f"{RENDER}-b:{direct}")] = f"http://127.0.0.1:{proxied}"
    return kube_api


def run(capsys, *argv):
    code = main(["ops", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_status_lists_pods_with_their_metrics(cluster, kubeconfig, capsys):
    code, out, err = run(capsys, "status", "--kubeconfig", kubeconfig, "--json")
    assert code == 0, err
    status = json.loads(out)
    assert status["deployment"] == RENDER and status["namespace"] == NAMESPACE
    assert (status["desired"], status["ready"], status["hpa"]) == (2, 2, None)
    a, b = status["pods"]
    assert (a["name"], a["ready"], a["ip"], a["restarts"]) == (f"{RENDER}-a", True, "127.0.0.1", 0)
    assert a["metrics"]["voxcast_render_queue_depth"] == 3
    assert a["metrics"]["voxcast_render_cache_bytes"] == 2 * GiB
    assert a["metrics"]["voxcast_render_cache_limit_bytes"] == 4 * GiB
    assert (b["ready"], b["restarts"]) == (False, 2)
    assert b["metrics"]["voxcast_render_gpu_memory_bytes"] == 3 * GiB, "read through the API pod proxy"
    assert b["metrics_error"] is None

    code, out, _ = run(capsys, "status", "--kubeconfig", kubeconfig)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"render Deployment {NAMESPACE}/{RENDER}: 2/2 ready"
    assert lines[1].split() == [
        "POD",
        "READY",
        "PHASE",
        "RESTARTS",
        "NODE",
        "QUEUE",
        "CACHE",
        "GiB",
        "VOLUMES",
        "GPU",
        "GiB",
    ]
    assert lines[2].split() == [
        f"{RENDER}-a",
        "yes",
        "Running",
        "0",
        "gpu-node-1",
        "3",
        "2.0/4.0",
        "(50%)",
        "2",
        "-",
    ]
    assert lines[3].split() == [
        f"{RENDER}-b",
        "no",
        "Running",
        "2",
        "gpu-node-1",
        "0",
        "1.0/4.0",
        "(25%)",
        "2",
        "3.0",
    ]


def test_status_without_reachable_metrics_still_lists_pods(cluster, kubeconfig, capsys):
    cluster.proxy_targets.clear()
    code, out, err = run(capsys, "status", "--kubeconfig", kubeconfig)
    assert code == 0, err
    assert f"{RENDER}-b: metrics unreachable" in out and "API proxy: 503" in out
    assert out.splitlines()[3].split()[5:] == ["-", "-", "-", "-"]


def test_scale_patches_the_deployment(cluster, kubeconfig, capsys):
    code, out, err = run(capsys, "scale", "--replicas", "5", "--kubeconfig", kubeconfig)
    assert code == 0, err
    assert out.strip() == f"Deployment {RENDER}: replicas 2 -> 5"
    assert cluster.get(DEPLOYMENTS, NAMESPACE, RENDER)["spec"]["replicas"] == 5
    assert ("PATCH", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{RENDER}/scale") in cluster.requests


def test_scale_defers_to_the_hpa_unless_asked(cluster, kubeconfig, capsys):
    cluster.put(HPAS, render_hpa(NAMESPACE, minimum=2, maximum=8))
    code, _, err = run(capsys, "scale", "--replicas", "4", "--kubeconfig", kubeconfig)
    assert code == 2
    assert f"HorizontalPodAutoscaler {RENDER} owns the render replica count (2-8)" in err
    assert "--hpa-min" in err
    assert cluster.get(DEPLOYMENTS, NAMESPACE, RENDER)["spec"]["replicas"] == 2, "nothing changed"

    code, out, err = run(capsys, "scale", "--replicas", "4", "--hpa-min", "--kubeconfig", kubeconfig)
    assert code == 0, err
    assert out.strip() == f"HorizontalPodAutoscaler {RENDER}: minReplicas 2 -> 4 (max 8)"
    hpa = cluster.get(HPAS, NAMESPACE, RENDER)
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (4, 8)
    assert cluster.get(DEPLOYMENTS, NAMESPACE, RENDER)["spec"]["replicas"] == 2, "the HPA moves the pods"

    # A floor above the ceiling lifts the ceiling too, so the HPA stays valid.
    code, out, _ = run(capsys, "scale", "--replicas", "10", "--hpa-min", "--kubeconfig", kubeconfig)
    assert code == 0 and out.strip().endswith("minReplicas 4 -> 10 (max 10)")

    code, out, _ = run(capsys, "status", "--kubeconfig", kubeconfig, "--no-metrics")
    assert f"scaled by HorizontalPodAutoscaler {RENDER}: 10-10 pods" in out


@pytest.mark.parametrize(
    "setup, argv, message",
    [
        (
            None,
            ["status", "--release", "other"],
            "no render Deployment of release 'other' in namespace imaging",
        ),
        (
            None,
            ["status", "--namespace", "empty"],
            "no render Deployment of any voxcast release in namespace empty",
        ),
        (
            "second-release",
            ["scale", "--replicas", "1"],
            "several voxcast releases in namespace imaging (second, viewer)",
        ),
        ("revoked", ["status"], "not allowed to list Deployments in namespace imaging"),
        (None, ["status", "--context", "nope"], "has no context 'nope'"),
    ],
)
def test_errors_are_one_clear_line(cluster, kubeconfig, capsys, setup, argv, message):
    if setup == "second-release":
        cluster.put(DEPLOYMENTS, render_deployment(NAMESPACE, release="second"))
    if setup == "revoked":
        cluster.token = "revoked"
    code, out, err = run(capsys, *argv, "--kubeconfig", kubeconfig)
    assert code == 2 and out == ""
    assert err.startswith("voxcast: error: ") and message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_outside_a_cluster(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    code, _, err = run(capsys, "status")
    assert code == 2
    assert "no Kubernetes cluster configured" in err and "KUBECONFIG" in err

    # An API server that does not answer.
    from .apiserver import write_kubeconfig

    config = write_kubeconfig(tmp_path / "dead", "http://127.0.0.1:9", "token")
    code, _, err = run(capsys, "scale", "--replicas", "1", "--kubeconfig", config)
    assert code == 2 and "cannot reach the Kubernetes API at http://127.0.0.1:9" in err


def test_bad_replicas_are_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["ops", "scale", "--replicas", "-1"])
    assert exit_info.value.code == 2
    assert "must be 0 or more" in capsys.readouterr().err
