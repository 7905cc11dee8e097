"""Shared fixtures. Services run for real on free loopback ports; data is made by `voxcast demo`."""

from __future__ import annotations

import os

import pytest


# Tests never touch the user's ~/.voxcast.
@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("VOXCAST_HOME", str(tmp_path / "voxcast-home"))
    from voxcast.config import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def pytest_report_header(config):
    return f"VOXCAST_BACKEND={os.environ.get('VOXCAST_BACKEND', 'auto')}"
