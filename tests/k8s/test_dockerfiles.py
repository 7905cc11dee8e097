"""The service images, checked by reading their Dockerfiles (no Docker engine is needed): each one
runs as the non-root user the chart expects, copies files that exist and that .dockerignore lets
through, installs extras that pyproject.toml defines, and starts a real `voxcast serve` command."""

from __future__ import annotations

import fnmatch
import re
import shlex
import tomllib

import pytest
import yaml

from voxcast.cli import build_parser
from voxcast.config import Settings

from .conftest import CHART, REPO

SERVICES = ["catalog", "render", "gateway"]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())


def instructions(path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    result, pending = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = (pending + stripped).strip()
        pending = ""
        keyword, _, args = full.partition(" ")
        result.append((keyword.upper(), args.strip()))
    assert not pending, f"{path}: dangling line continuation"
    return result


def stages(steps) -> list[dict]:
    """Build stages: base, alias and their instructions; global ARGs resolved to their defaults."""
    args = {}
    found = []
    for keyword, value in steps:
        if keyword == "ARG" and not found:
            name, _, default = value.partition("=")
            args[name] = default
        elif keyword == "FROM":
            parts = value.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), parts[0])
            alias = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            found.append({"base": base, "alias": alias, "steps": []})
        else:
            found[-1]["steps"].append((keyword, value))
    return found


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore (last matching pattern wins, `!` re-includes) leaves `path` out."""
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").rstrip("/")
        if pat == "**" or fnmatch.fnmatch(path, pat) or path.startswith(pat + "/"):
            result = not negate
    return result


DOCKERIGNORE = [
    line.strip()
    for line in (REPO / ".dockerignore").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]


@pytest.mark.parametrize("service", SERVICES)
def test_image_runs_a_real_command_as_the_charts_non_root_user(service):
    dockerfile = REPO / "services" / service / "Dockerfile"
    final = stages(instructions(dockerfile))[-1]
    steps = dict(final["steps"])  # last of each kind, as Docker applies them

    user = steps["USER"].split(":")[0]
    assert user.isdigit() and int(user) != 0, "a numeric non-root uid lets runAsNonRoot verify it"
    assert int(user) == VALUES["podSecurityContext"]["runAsUser"]
    assert "VOXCAST_HOME=/data" in steps["ENV"]
    assert re.search(rf"chown {user}:{user} /data", steps["RUN"]), "the data home is writable by the user"

    entrypoint, cmd = yaml.safe_load(steps["ENTRYPOINT"]), yaml.safe_load(steps["CMD"])
    assert entrypoint == ["voxcast"] and "voxcast" in PYPROJECT["project"]["scripts"]
    assert cmd == ["serve", service]
    parser = build_parser()
    assert callable(parser.parse_args(cmd).func)
    # The chart overrides the arguments with an explicit port: that must parse too.
    port = VALUES[service]["port"]
    assert parser.parse_args(["serve", service, "--port", str(port)]).port == port

    exposed = {int(p) for p in steps["EXPOSE"].split()}
    assert Settings.model_fields[f"{service}_port"].default in exposed
    assert port in exposed


@pytest.mark.parametrize("service", SERVICES)
def test_build_stages_copy_what_exists_and_install_defined_extras(service):
    dockerfile = REPO / "services" / service / "Dockerfile"
    all_stages = stages(instructions(dockerfile))
    aliases = set()
    extras_defined = set(PYPROJECT["project"]["optional-dependencies"])
    for stage in all_stages:
        if stage["base"] not in aliases:  # an image, not an earlier stage
            assert not stage["base"].endswith(":latest") and ":" in stage["base"], "bases are pinned to a tag"
        for keyword, value in stage["steps"]:
            if keyword == "COPY":
                words = value.split()
                flags = [w for w in words if w.startswith("--")]
                *sources, _destination = [w for w in words if not w.startswith("--")]
                source_stage = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
                if source_stage:
                    assert source_stage in aliases, f"COPY --from={source_stage} names no earlier stage"
                    continue
                for source in sources:
                    assert (REPO / source).exists(), f"{dockerfile}: COPY {source} does not exist"
                    assert not ignored(source, DOCKERIGNORE), f"{source} is excluded by .dockerignore"
            if keyword == "RUN" and "pip install" in value:
                assert "--no-cache-dir" in value
                for extras in re.findall(r"/src\[([\w,]+)\]", value):
                    assert set(extras.split(",")) <= extras_defined, extras
        aliases.add(stage["alias"])
    # The runtime stage carries no build leftovers: only the venv is copied over.
    final_copies = [v for k, v in all_stages[-1]["steps"] if k == "COPY"]
    assert final_copies == ["--from=build /opt/venv /opt/venv"]


def test_render_image_has_cpu_and_cuda_variants():
    steps = instructions(REPO / "services" / "render" / "Dockerfile")
    global_args = dict(
        v.partition("=")[::2] for k, v in steps[: next(i for i, s in enumerate(steps) if s[0] == "FROM")]
    )
    assert global_args["VARIANT"] == "cpu"
    assert re.fullmatch(r"nvidia/cuda:12\.\d+\.\d+-runtime-ubuntu24\.04", global_args["CUDA_IMAGE"])
    by_alias = {s["alias"]: s for s in stages(steps)}
    assert by_alias["base-cpu"]["base"] == global_args["PYTHON_IMAGE"]
    assert by_alias["base-gpu"]["base"] == global_args["CUDA_IMAGE"]
    # Ubuntu 24.04's python3 is 3.12, the slim image's 3.11: both satisfy requires-python.
    required = tuple(int(n) for n in PYPROJECT["project"]["requires-python"].lstrip(">=").split("."))
    slim = tuple(int(n) for n in re.match(r"python:(\d+)\.(\d+)", global_args["PYTHON_IMAGE"]).groups())
    assert slim >= required and (3, 12) >= required
    gpu_install = next(v for k, v in by_alias["build"]["steps"] if k == "RUN" and "pip install" in v)
    assert '"$VARIANT" = gpu' in gpu_install and "/src[gpu]" in gpu_install
    assert any(
        dep.startswith("cupy-cuda12x==") for dep in PYPROJECT["project"]["optional-dependencies"]["gpu"]
    )
    # Kernel caches go to /cache, the emptyDir the chart mounts on render pods.
    env = next(v for k, v in stages(steps)[-1]["steps"] if k == "ENV")
    assert {"NUMBA_CACHE_DIR=/cache/numba", "CUPY_CACHE_DIR=/cache/cupy"} <= set(shlex.split(env))
    # The chart picks the GPU image by tag suffix.
    assert VALUES["render"]["gpu"]["tagSuffix"] == "-gpu"


def test_dockerignore_keeps_the_context_small():
    assert DOCKERIGNORE[0] == "**", "everything is excluded unless listed"
    for path in ("pyproject.toml", "README.md", "voxcast/config.py", "services/render/server.py"):
        assert not ignored(path, DOCKERIGNORE), path
    for path in (
        ".venv/bin/python",
        "tests/conftest.py",
        ".git/HEAD",
        "voxcast/__pycache__/x.pyc",
        "bench/x.py",
    ):
        assert ignored(path, DOCKERIGNORE), path
