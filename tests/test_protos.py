"""The committed gRPC stubs must match the .proto files."""

from pathlib import Path

from voxcast import protos


def test_generated_stubs_are_current(tmp_path):
    protos.generate(tmp_path)
    committed = Path(protos.__file__).parent / "v1"
    generated = sorted((tmp_path / "voxcast" / "v1").glob("*.py*"))
    assert generated, "protoc produced nothing"
    stale = [p.name for p in generated if p.read_text() != (committed / p.name).read_text()]
    assert not stale, f"stale stubs, run `make protos`: {stale}"
