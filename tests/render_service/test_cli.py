"""`voxcast serve render` options and `voxcast render --server` through a running service."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image
from voxcast.render.server_cli import add_serve_parser, remote_volume

from voxcast.cli import VoxcastCliError, main
from voxcast.testing import free_port


def test_serve_render_options():
    parser = argparse.ArgumentParser()
    add_serve_parser(parser.add_subparsers(dest="service"))
    args = parser.parse_args(
        ["render", "--port", "6000", "--catalog", "catalog:50051", "--metrics-port", "9100"]
    )
    assert (args.service, args.port, args.catalog, args.metrics_port) == (
        "render",
        6000,
        "catalog:50051",
        9100,
    )
    defaults = parser.parse_args(["render"])
    assert defaults.port is None and defaults.catalog is None and defaults.metrics_port is None


def test_render_through_the_service_matches_a_local_render(start_render, catalog, demo, tmp_path):
    server, _ = start_render()
    addr = f"127.0.0.1:{server.port}"
    volume = remote_volume(addr, demo.ct_series_uid)
    assert volume.shape == demo.ct.shape and np.allclose(volume.affine, demo.ct.affine)

    common = [demo.ct_series_uid, "--mode", "mip", "--plane", "sagittal", "--size", "80x64"]
    remote, local = tmp_path / "remote.png", tmp_path / "local.png"
    assert main(["render", *common, "--server", addr, "-o", str(remote)]) == 0
    assert main(["render", *common, "--catalog", catalog.addr, "--backend", "numpy", "-o", str(local)]) == 0
    assert np.array_equal(np.asarray(Image.open(remote)), np.asarray(Image.open(local)))


def test_remote_errors_are_one_line(start_render):
    server, _ = start_render()
    with pytest.raises(VoxcastCliError, match="NOT_FOUND"):
        remote_volume(f"127.0.0.1:{server.port}", "1.2.3.4")


def test_serve_render_process_answers_health_and_stops_on_sigterm(catalog, tmp_path):
    port = free_port()
    env = {**os.environ, "VOXCAST_HOME": str(tmp_path / "home"), "VOXCAST_BACKEND": "numpy"}
    command = [
        sys.executable,
        "-m",
        "voxcast.cli",
        "serve",
        "render",
        "--port",
        str(port),
        "--catalog",
        catalog.addr,
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=60)
            # NOT_SERVING while the backend warms up, then SERVING.
            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=60)
            for status in watch:
                if status.status == health_pb2.HealthCheckResponse.SERVING:
                    break
                assert status.status == health_pb2.HealthCheckResponse.NOT_SERVING
            watch.cancel()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert f"render service on port {port}" in output and catalog.addr in output
    assert "numpy render backend warmed up in" in output
