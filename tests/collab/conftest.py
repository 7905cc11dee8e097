"""Fixtures for the session layer: a real Redis, the one on loopback or one started here."""

from __future__ import annotations

import shutil

import pytest
from collabkit import RedisProcess, answers


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
    if answers(6379):
        yield "redis://127.0.0.1:6379/0"
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no Redis on 127.0.0.1:6379 and redis-server is not installed")
    server = RedisProcess(binary)
    server.start()
    yield server.url
    server.stop()
