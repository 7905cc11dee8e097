"""Settings come from VOXCAST_* variables with laptop defaults."""

import pytest
from pydantic import ValidationError

from voxcast.config import Settings


def test_defaults_run_on_one_laptop(tmp_path, monkeypatch):
    monkeypatch.setenv("VOXCAST_HOME", str(tmp_path))
    s = Settings()
    assert s.db_url == f"sqlite:///{tmp_path / 'catalog.db'}"
    assert s.blobs == tmp_path / "blobs"
    assert s.redis_url == "" and s.backend == "auto"


def test_environment_overrides(monkeypatch):
    monkeypatch.setenv("VOXCAST_RENDER_ADDRS", "a:1, b:2,")
    monkeypatch.setenv("VOXCAST_BACKEND", "numpy")
    s = Settings()
    assert s.render_addr_list == ["a:1", "b:2"] and s.backend == "numpy"


def test_bad_values_are_refused(monkeypatch):
    monkeypatch.setenv("VOXCAST_BACKEND", "opengl")
    with pytest.raises(ValidationError):
        Settings()


def test_production_refuses_the_default_secret(monkeypatch):
    monkeypatch.setenv("VOXCAST_ENV", "production")
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings()
    monkeypatch.setenv("VOXCAST_SECRET_KEY", "s3cret-for-real")
    assert Settings().env == "production"


def test_readme_documents_every_setting():
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    missing = [name for name in Settings.model_fields if f"`VOXCAST_{name.upper()}`" not in readme]
    assert not missing, f"settings missing from the README's configuration table: {missing}"


def test_cli_output_into_a_closed_pipe_exits_quietly(tmp_path, monkeypatch):
    """`voxcast ls | head`: when the reader has left, the command ends quietly with status 0."""
    from voxcast import cli

    class ClosedPipe:
        def __init__(self, path):
            self._file = open(path, "w")  # noqa: SIM115 - a stand-in for the pipe's descriptor

        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            pass

        def fileno(self):
            return self._file.fileno()

    monkeypatch.setattr("sys.stdout", ClosedPipe(tmp_path / "stdout"))
    assert cli.main(["demo", "--out", str(tmp_path / "demo"), "--size", "small"]) == 0
