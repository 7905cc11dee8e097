"""Shared fixtures. Services run for real on free loopback ports; data is made by `voxcast demo`."""

from __future__ import annotations

import os
import shutil

import pytest

from voxcast.testing import RedisProcess, redis_answers


# Tests never touch the user's ~/.voxcast.
@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("VOXCAST_HOME", str(tmp_path / "voxcast-home"))
    from voxcast.config import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


# A real Redis for the session bus and the sign-in throttle (never a fake).
@pytest.fixture
def own_redis():
    """A Redis started for one test, which it may kill and restart on the same port."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    server = RedisProcess(binary)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url():
    """The Redis on 127.0.0.1:6379 if it answers, else one started for this test run."""
    if redis_answers(6379):
        yield "redis://127.0.0.1:6379/0"
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no Redis on 127.0.0.1:6379 and redis-server is not installed")
    server = RedisProcess(binary)
    server.start()
    yield server.url
    server.stop()


def pytest_report_header(config):
    return f"VOXCAST_BACKEND={os.environ.get('VOXCAST_BACKEND', 'auto')}"
