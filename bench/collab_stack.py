"""The deployed shape of shared sessions on loopback, for the fan-out benchmark: one Redis, a catalog
holding a demo PET/CT study, a render service and two gateway processes, each started as
`voxcast serve ...` would be, and stopped again however the benchmark ends."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

import httpx

from voxcast.config import Settings
from voxcast.testing import RedisProcess, free_port, redis_answers

PASSWORD = "bench-collab-password"
START_TIMEOUT_S = 180.0  # the render service compiles its kernels before it says SERVING


def _wait(ready, proc: subprocess.Popen | None, what: str, timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode} while starting")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start within {timeout:g} s")
        time.sleep(0.2)


@contextmanager
def _process(args: list[str], env: dict, what: str):
    proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@contextmanager
def redis_url():
    """VOXCAST_REDIS_URL if set, else the Redis on 127.0.0.1:6379 if it answers, else a redis-server
    started on a free loopback port without persistence."""
    url = os.environ.get("VOXCAST_REDIS_URL")
    if url:
        yield url
        return
    if redis_answers(6379):
        yield "redis://127.0.0.1:6379/0"
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("no Redis on 127.0.0.1:6379 and redis-server is not installed")
    server = RedisProcess(binary)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def _render_serving(addr: str) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        with grpc.insecure_channel(addr) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
            return reply.status == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False


def _gateway_up(url: str) -> bool:
    try:
        return httpx.get(url + "/api/health", timeout=2).status_code < 500
    except httpx.HTTPError:
        return False


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system) a process has used so far: a child's from /proc, this one's from
    os.times()."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Stack:
    gateways: list[str]  # http://127.0.0.1:PORT of gateway A, then B
    render_metrics: str  # the render service's Prometheus endpoint
    backend: str
    study_uid: str
    series_uid: str
    center: tuple[float, float, float]
    users: list[str] = field(default_factory=list)
    pids: dict[str, int] = field(default_factory=dict)  # "render", "gateway A", "gateway B"

    def login(self, gateway: str, user: str) -> str:
        r = httpx.post(gateway + "/api/auth/login", json={"username": user, "password": PASSWORD}, timeout=30)
        r.raise_for_status()
        return r.json()["access_token"]

    def rendered(self) -> float:
        """Frames the render service has rendered and encoded, every rung (coalesced requests once)."""
        from prometheus_client.parser import text_string_to_metric_families

        text = httpx.get(self.render_metrics, timeout=10).text
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "voxcast_render_frames_total"
        )


@contextmanager
def collab_stack(home: str, users: int, backend: str = "numba", study: str = "small"):
    """Everything running, with `users` gateway accounts "user0".. (password PASSWORD)."""
    from voxcast.catalog.client import CatalogClient
    from voxcast.catalog.server import create_server as create_catalog
    from voxcast.gateway.auth.store import Store

    from voxcast.demo import write_demo_study

    with ExitStack() as stack:
        redis = stack.enter_context(redis_url())
        settings = Settings(home=os.path.join(home, "catalog"), backend=backend, metrics_port=0)
        demo = write_demo_study(os.path.join(home, "demo"), size=study)
        catalog, catalog_port = create_catalog(settings, 0, host="127.0.0.1")
        catalog.start()
        stack.callback(lambda: catalog.stop(0).wait())
        catalog_addr = f"127.0.0.1:{catalog_port}"
        with CatalogClient(catalog_addr) as client:
            results = client.ingest([str(p) for p in demo.ct_paths + demo.pet_paths])
        if any(r.status == r.REJECTED for r in results):
            raise RuntimeError(f"the catalog rejected the demo study: {results}")

        base_env = {**os.environ, "VOXCAST_LOG_LEVEL": "ERROR", "VOXCAST_BACKEND": backend}
        cli = [sys.executable, "-m", "voxcast.cli", "serve"]
        render_port, metrics_port = free_port(), free_port()
        render_env = {**base_env, "VOXCAST_HOME": os.path.join(home, "render")}
        render_args = [*cli, "render", "--port", str(render_port), "--catalog", catalog_addr]
        render = stack.enter_context(
            _process([*render_args, "--metrics-port", str(metrics_port)], render_env, "render service")
        )
        render_addr = f"127.0.0.1:{render_port}"

        gateway_home = os.path.join(home, "gateway")
        store = Store.from_settings(Settings(home=gateway_home))
        names = [f"user{i}" for i in range(users)]
        for name in names:
            store.add_user(name, PASSWORD, "clinician")
        gateway_env = {
            **base_env,
            "VOXCAST_HOME": gateway_home,
            "VOXCAST_CATALOG_ADDR": catalog_addr,
            "VOXCAST_RENDER_ADDRS": render_addr,
            "VOXCAST_REDIS_URL": redis,
        }
        ports = [free_port(), free_port()]
        procs = [
            stack.enter_context(
                _process([*cli, "gateway", "--host", "127.0.0.1", "--port", str(p)], gateway_env, "gateway")
            )
            for p in ports
        ]
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        _wait(lambda: _render_serving(render_addr), render, "render service")
        for url, proc in zip(urls, procs, strict=True):
            _wait(lambda u=url: _gateway_up(u), proc, f"gateway {url}")
        yield Stack(
            gateways=urls,
            render_metrics=f"http://127.0.0.1:{metrics_port}/metrics",
            backend=backend,
            study_uid=demo.study_uid,
            series_uid=demo.ct_series_uid,
            center=tuple(float(c) for c in demo.ct.center),
            users=names,
            pids={"render": render.pid, "gateway A": procs[0].pid, "gateway B": procs[1].pid},
        )
