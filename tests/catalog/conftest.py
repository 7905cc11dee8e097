"""Catalog fixtures: a local catalog in the test's VOXCAST_HOME, a real gRPC server on a free port,
the small demo study, and a real PostgreSQL (found on 127.0.0.1:5432 or started in a temp dir)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from glob import glob
from pathlib import Path

import pytest
from voxcast.catalog.catalog import Catalog
from voxcast.catalog.client import CatalogClient
from voxcast.catalog.server import create_server

from voxcast.config import get_settings
from voxcast.testing import free_port


@pytest.fixture
def catalog():
    cat = Catalog.open(get_settings())
    yield cat
    cat.close()


@pytest.fixture
def src(tmp_path):
    """A folder for input files, apart from VOXCAST_HOME (which also lives under tmp_path)."""
    folder = tmp_path / "input"
    folder.mkdir()
    return folder


@pytest.fixture
def server(catalog):
    """A started catalog server on a free port and a client connected to it."""
    srv, port = create_server(get_settings(), 0, host="127.0.0.1", catalog=catalog)
    srv.start()
    client = CatalogClient(f"127.0.0.1:{port}", timeout=60)
    client.wait_ready()
    yield client
    client.close()
    srv.stop(grace=1).wait()


@pytest.fixture(scope="session")
def demo_study(tmp_path_factory):
    from voxcast.demo.study import write_demo_study

    return write_demo_study(tmp_path_factory.mktemp("demo") / "study", size="small", seed=3)


# -- PostgreSQL --------------------------------------------------------------------------------------


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _pg_bin() -> Path | None:
    candidates = sorted(glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _start_cluster(tmp: Path):
    """initdb + pg_ctl in a temp dir, on a free port; as the postgres user when we are root."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip(
            "no PostgreSQL server answers on 127.0.0.1:5432 and no PostgreSQL binaries (initdb) exist"
        )
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("running as root without runuser: cannot start a PostgreSQL cluster")
        as_user = [runuser, "-u", "postgres", "--"]
        # pytest's temp dirs are private to root: the postgres user needs a folder it can reach.
        tmp = Path(tempfile.mkdtemp(prefix="voxcast-pg-"))
        shutil.chown(tmp, "postgres")
    data = tmp / "pgdata"
    port = free_port()
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"],
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run(
        [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(tmp / "log"), "-w", "-o",
         f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1", "start"],
        check=True, capture_output=True,
    )  # fmt: skip

    def stop():
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)  # fmt: skip
        if as_user:
            shutil.rmtree(tmp, ignore_errors=True)

    return f"127.0.0.1:{port}", stop


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    """host:port of a PostgreSQL server that accepts user postgres without a password."""
    # VOXCAST_TEST_PG=start skips the running server, to exercise the throwaway cluster too.
    if _answers("127.0.0.1", 5432) and os.environ.get("VOXCAST_TEST_PG") != "start":
        yield "127.0.0.1:5432"
        return
    address, stop = _start_cluster(tmp_path_factory.mktemp("pg"))
    try:
        yield address
    finally:
        stop()


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh, empty database for one test, dropped afterwards."""
    psycopg = pytest.importorskip("psycopg", reason="psycopg (extra `postgres`) is not installed")

    name = f"voxcast_test_{uuid.uuid4().hex[:12]}"
    admin = f"postgresql://postgres@{postgres_server}/postgres"
    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    yield f"postgresql+psycopg://postgres@{postgres_server}/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
