"""The backend registry: each backend is a module with `is_available() -> bool`, `missing() -> str`
(what it lacks, "" when available) and a `Backend` class implementing rays.Backend.

Modules are imported only when asked for, so numba and cupy stay optional. `auto` picks cupy when
a CUDA device answers, else numba, else numpy; the choice is made once per process.
"""

from __future__ import annotations

import importlib
import threading
from functools import lru_cache
from types import ModuleType

from ..rays import Backend

BACKENDS: dict[str, str] = {
    "numpy": "voxcast.render.engine.backends.numpy_backend",
    "numba": "voxcast.render.engine.backends.numba_backend",
    "cupy": "voxcast.render.engine.backends.cupy_backend",
}
AUTO_ORDER = ("cupy", "numba", "numpy")

_instances: dict[str, Backend] = {}
_lock = threading.Lock()


class BackendUnavailable(RuntimeError):
    """The backend exists but cannot run here (a package or a device is missing)."""


def _module(name: str) -> ModuleType:
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; known: auto, {', '.join(BACKENDS)}")
    try:
        return importlib.import_module(BACKENDS[name])
    except ImportError as exc:
        raise BackendUnavailable(f"backend {name!r} cannot be imported: {exc}") from exc


def availability(name: str) -> tuple[bool, str]:
    """(available, what is missing) for a registered backend."""
    try:
        module = _module(name)
    except BackendUnavailable as exc:
        return False, str(exc)
    if module.is_available():
        return True, ""
    return False, module.missing() or "unavailable"


@lru_cache(maxsize=1)
def auto_backend_name() -> str:
    for name in AUTO_ORDER:
        if availability(name)[0]:
            return name
    raise BackendUnavailable("no render backend is available")  # numpy always is


def resolve_name(name: str | None = None) -> str:
    if name is None:
        from voxcast.config import get_settings

        name = get_settings().backend
    name = name.strip().lower()
    return auto_backend_name() if name == "auto" else name


def get_backend(name: str | None = None) -> Backend:
    """The backend instance for `name` (default: VOXCAST_BACKEND), one per process."""
    name = resolve_name(name)
    with _lock:
        if name not in _instances:
            module = _module(name)
            if not module.is_available():
                raise BackendUnavailable(f"backend {name!r} is not available: {module.missing()}")
            _instances[name] = module.Backend()
        return _instances[name]
