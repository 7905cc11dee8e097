"""The backend registry: names, availability, `auto`, and the errors for the rest."""

from __future__ import annotations

import pytest
from voxcast.render.engine import backends
from voxcast.render.engine.backends import BackendUnavailable, auto_backend_name, availability, get_backend

from voxcast.config import get_settings


def test_numpy_is_always_there():
    backend = get_backend("numpy")
    assert backend.name == "numpy" and get_backend("NumPy") is backend
    assert availability("numpy") == (True, "")


def test_default_comes_from_the_settings(monkeypatch):
    monkeypatch.setenv("VOXCAST_BACKEND", "numpy")
    get_settings.cache_clear()
    assert get_backend().name == "numpy"


def test_auto_picks_the_first_available_in_order():
    name = auto_backend_name()
    assert name in backends.AUTO_ORDER
    for better in backends.AUTO_ORDER[: backends.AUTO_ORDER.index(name)]:
        assert not availability(better)[0]
    assert get_backend("auto").name == name


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(ValueError, match="known: auto, numpy, numba, cupy"):
        get_backend("opencl")


def test_an_unavailable_backend_says_what_is_missing(monkeypatch):
    monkeypatch.setitem(backends.BACKENDS, "numba", "voxcast.render.engine.backends.no_such_module")
    monkeypatch.setattr(backends, "_instances", {})
    ok, why = availability("numba")
    assert not ok and "no_such_module" in why
    with pytest.raises(BackendUnavailable, match="numba"):
        get_backend("numba")
