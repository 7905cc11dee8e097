"""gRPC plumbing shared by the services: channel/server options and proto <-> Volume geometry."""

from __future__ import annotations

import numpy as np

from voxcast.v1 import common_pb2

# Volumes travel in chunks, but frames and uploads can still be a few MB: lift the 4 MB default.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
]


def geometry_to_proto(volume, dtype: str | None = None) -> common_pb2.VolumeGeometry:
    o = volume.origin
    return common_pb2.VolumeGeometry(
        shape=list(volume.shape),
        spacing_mm=[float(s) for s in volume.spacing],
        origin_lps=common_pb2.Vec3(x=o[0], y=o[1], z=o[2]),
        direction=[float(v) for v in volume.direction.ravel()],
        frame_of_reference_uid=volume.frame_of_reference_uid,
        units=volume.units,
        dtype=dtype or str(volume.voxels.dtype),
        warnings=list(volume.warnings),
    )


def geometry_from_proto(g: common_pb2.VolumeGeometry) -> dict:
    """origin, spacing, direction (3x3) and shape from the proto, as numpy arrays."""
    return {
        "shape": tuple(int(n) for n in g.shape),
        "spacing": np.array(g.spacing_mm, dtype=np.float64),
        "origin": np.array([g.origin_lps.x, g.origin_lps.y, g.origin_lps.z]),
        "direction": np.array(g.direction, dtype=np.float64).reshape(3, 3),
    }
