"""A wheel (the Docker images install one) must carry every package and data file of the tree."""

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _config():
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]


def _module_name(folder: Path, package_dir: dict[str, str]) -> str:
    rel = folder.relative_to(REPO).as_posix()
    for name, path in sorted(package_dir.items(), key=lambda kv: -len(kv[1])):
        if rel == path or rel.startswith(path + "/"):
            return name + rel[len(path) :].replace("/", ".")
    raise AssertionError(f"{rel} is not under any package-dir mapping")


def test_every_package_is_listed():
    config = _config()
    roots = [REPO / path for path in config["package-dir"].values()]
    found = {
        _module_name(init.parent, config["package-dir"])
        for root in roots
        for init in root.rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert found == set(config["packages"])


def test_kernel_sources_and_viewer_are_package_data():
    data = _config()["package-data"]
    assert {"kernels/*.cu", "kernels/*.cuh"} <= set(data["voxcast.render.engine"])
    assert list((REPO / "services/render/engine/kernels").glob("*.cu"))
    assert list((REPO / "services/gateway/static").rglob("*.js"))
