"""Generate the gRPC/protobuf stubs in voxcast/v1 from protos/voxcast/v1/*.proto.

The stubs are committed so that installing voxcast needs no code generator; tests regenerate
them into a temporary folder and fail when the committed ones are stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROTO_ROOT = REPO / "protos"


def proto_files() -> list[Path]:
    return sorted((PROTO_ROOT / "voxcast" / "v1").glob("*.proto"))


def generate(out_dir: Path) -> None:
    """Write <name>_pb2.py, <name>_pb2.pyi and <name>_pb2_grpc.py for every proto into out_dir/voxcast/v1."""
    import grpc_tools
    from grpc_tools import protoc

    include = Path(grpc_tools.__file__).parent / "_proto"
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *[str(p.relative_to(PROTO_ROOT)) for p in proto_files()],
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed on " + ", ".join(p.name for p in proto_files()))


if __name__ == "__main__":
    generate(REPO if len(sys.argv) < 2 else Path(sys.argv[1]))
