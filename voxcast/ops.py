"""`voxcast ops`: look at and scale the render pods of a voxcast release on Kubernetes."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from voxcast.cli import VoxcastCliError


def register(commands, serve_commands) -> None:
    ops = commands.add_parser("ops", help="render pods on Kubernetes: status and scale")
    sub = ops.add_subparsers(dest="ops_command", metavar="ACTION", required=True)

    status = sub.add_parser("status", help="render pods, readiness, cache fill, queue depth, GPU memory")
    _connection_arguments(status)
    status.add_argument("--no-metrics", action="store_true", help="skip reading each pod's /metrics")
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status.set_defaults(func=_status)

    scale = sub.add_parser("scale", help="set the number of render pods")
    _connection_arguments(scale)
    scale.add_argument("--replicas", type=_count, required=True, help="render pods wanted")
    scale.add_argument(
        "--hpa-min",
        action="store_true",
        help="when a HorizontalPodAutoscaler owns the count, set its minReplicas instead",
    )
    scale.set_defaults(func=_scale)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _connection_arguments(parser) -> None:
    parser.add_argument("--namespace", "-n", default=None, help="namespace (default: the kubeconfig's)")
    parser.add_argument("--release", default=None, help="Helm release name, when a namespace holds several")
    parser.add_argument(
        "--kubeconfig", default=None, help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)"
    )
    parser.add_argument("--context", default=None, help="kubeconfig context (default: the current one)")


def _ops(args):
    try:
        from voxcast.kube import KubernetesError, RenderOps, connect
    except ModuleNotFoundError as exc:
        raise VoxcastCliError(
            f"the Kubernetes client is not installed ({exc.name}): pip install 'voxcast[k8s]'"
        ) from exc
    try:
        cluster = connect(args.kubeconfig, args.context, args.namespace)
        return RenderOps(cluster, release=args.release), KubernetesError
    except KubernetesError as exc:
        raise VoxcastCliError(str(exc)) from exc


def _status(args) -> int:
    ops, KubernetesError = _ops(args)
    try:
        status = ops.status(with_metrics=not args.no_metrics)
    except KubernetesError as exc:
        raise VoxcastCliError(str(exc)) from exc
    if args.json:
        print(json.dumps(asdict(status), indent=2))
        return 0
    print(format_status(status))
    return 0


def _scale(args) -> int:
    ops, KubernetesError = _ops(args)
    try:
        print(ops.scale(args.replicas, hpa_min=args.hpa_min))
    except KubernetesError as exc:
        raise VoxcastCliError(str(exc)) from exc
    return 0


def _gib(value: float | None) -> str:
    return "-" if value is None else f"{value / 2**30:.1f}"


def format_status(status) -> str:
    lines = [
        f"render Deployment {status.namespace}/{status.deployment}: {status.ready}/{status.desired} ready"
    ]
    if status.hpa:
        h = status.hpa
        lines.append(
            f"scaled by HorizontalPodAutoscaler {h['name']}: {h['min']}-{h['max']} pods, "
            f"currently {h['current']}, wants {h['desired']}"
        )
    header = ("POD", "READY", "PHASE", "RESTARTS", "NODE", "QUEUE", "CACHE GiB", "VOLUMES", "GPU GiB")
    rows = [header]
    notes = []
    for pod in status.pods:
        m = pod.metrics
        cache = "-"
        if "voxcast_render_cache_bytes" in m:
            cache = _gib(m["voxcast_render_cache_bytes"])
            if m.get("voxcast_render_cache_limit_bytes"):
                share = 100 * m["voxcast_render_cache_bytes"] / m["voxcast_render_cache_limit_bytes"]
                cache += f"/{_gib(m['voxcast_render_cache_limit_bytes'])} ({share:.0f}%)"
        queue = m.get("voxcast_render_queue_depth")
        volumes = m.get("voxcast_render_cache_volumes")
        gpu = m.get("voxcast_render_gpu_memory_bytes")
        rows.append(
            (
                pod.name,
                "yes" if pod.ready else "no",
                pod.phase,
                str(pod.restarts),
                pod.node or "-",
                "-" if queue is None else f"{queue:.0f}",
                cache,
                "-" if volumes is None else f"{volumes:.0f}",
                _gib(gpu) if gpu else "-",
            )
        )
        if pod.metrics_error:
            notes.append(f"{pod.name}: metrics unreachable ({pod.metrics_error})")
    if not status.pods:
        lines.append("no render pods")
    else:
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines += [
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
        ]
    return "\n".join(lines + notes)
