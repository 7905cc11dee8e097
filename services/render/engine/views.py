"""Views in patient space (LPS, mm): MPR planes and orthographic cameras, their standard
constructors, camera moves, and the orientation labels of the image sides.

A view never depends on how a volume was acquired. Pixel (v, u) of a W x H image lies at
    center + (u - (W - 1) / 2) * pixel_mm * right + (v - (H - 1) / 2) * pixel_mm * down,
so the image centre is exactly `center`. The viewer looks along right x down.

Radiological convention (DESIGN.md): axial shows anterior at the top and the patient's right on
the image left; coronal shows superior at the top, patient's right on the left; sagittal shows
superior at the top, anterior on the left.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import NamedTuple

import numpy as np

from voxcast.volume import Volume

MAX_SIZE = 4096
# A direction component smaller than this is left out of an oblique label (as common viewers do).
LABEL_MIN_COMPONENT = 0.2
# right and down must be orthogonal to this tolerance (cosine of the angle between them).
ORTHOGONAL_TOL = 1e-3

# Letters of the positive and negative LPS axes.
_AXIS_LETTERS = (("L", "R"), ("P", "A"), ("S", "I"))


def check_size(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if not 1 <= int(value) <= MAX_SIZE:
        raise ValueError(f"{name} must be between 1 and {MAX_SIZE}, got {value}")
    return int(value)


def check_vector(name: str, value, *, unit: bool = False) -> np.ndarray:
    """A finite 3-vector as float64; with unit=True it must be non-zero and is normalised."""
    try:
        vec = np.array(value, dtype=np.float64).reshape(3)  # a copy: it becomes read-only
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be 3 numbers, got {value!r}") from None
    if not np.all(np.isfinite(vec)):
        raise ValueError(f"{name} must be finite, got {vec.tolist()}")
    if unit:
        norm = float(np.linalg.norm(vec))
        if norm < 1e-9:
            raise ValueError(f"{name} must be a non-zero direction")
        vec = vec / norm
    return vec


def check_positive(name: str, value) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(out) or out <= 0:
        raise ValueError(f"{name} must be a positive number of mm, got {value!r}")
    return out


class _Frozen:
    """Equality and hashing by value for the view dataclasses (their vectors are numpy arrays,
    which compare element-wise); the arrays are made read-only so the views stay immutable."""

    def _key(self) -> tuple:
        return tuple(
            tuple(float(x) for x in v) if isinstance(v, np.ndarray) else v
            for v in (getattr(self, f.name) for f in fields(self))
        )

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


def _readonly(vec: np.ndarray) -> np.ndarray:
    vec.setflags(write=False)
    return vec


class Labels(NamedTuple):
    """Patient directions at the image sides, e.g. axial: top 'A', bottom 'P', left 'R', right 'L'."""

    top: str
    bottom: str
    left: str
    right: str


def direction_label(vec) -> str:
    """Letters of an LPS direction, strongest component first; small components dropped."""
    vec = np.asarray(vec, dtype=np.float64)
    vec = vec / np.linalg.norm(vec)
    order = np.argsort(-np.abs(vec), kind="stable")
    letters = [_AXIS_LETTERS[a][0 if vec[a] > 0 else 1] for a in order if abs(vec[a]) >= LABEL_MIN_COMPONENT]
    return "".join(letters)


@dataclass(frozen=True, eq=False)
class Plane(_Frozen):
    """An image plane: `right` runs along image rows (left to right on screen), `down` along
    columns (top to bottom); both unit vectors in LPS. The image centre is exactly `center`."""

    center: np.ndarray
    right: np.ndarray
    down: np.ndarray
    pixel_mm: float
    width: int
    height: int

    def __post_init__(self) -> None:
        center = check_vector("center", self.center)
        right = check_vector("right", self.right, unit=True)
        down = check_vector("down", self.down, unit=True)
        if abs(float(right @ down)) > ORTHOGONAL_TOL:
            raise ValueError("right and down must be orthogonal")
        # Remove the residual so that the frame is exactly orthonormal.
        down = down - (down @ right) * right
        down /= np.linalg.norm(down)
        object.__setattr__(self, "center", _readonly(center))
        object.__setattr__(self, "right", _readonly(right))
        object.__setattr__(self, "down", _readonly(down))
        object.__setattr__(self, "pixel_mm", check_positive("pixel_mm", self.pixel_mm))
        object.__setattr__(self, "width", check_size("width", self.width))
        object.__setattr__(self, "height", check_size("height", self.height))

    @property
    def normal(self) -> np.ndarray:
        """The viewing direction, away from the viewer: right x down."""
        return np.cross(self.right, self.down)

    @property
    def top_left(self) -> np.ndarray:
        """World position of pixel (0, 0)."""
        return (
            self.center
            - (self.width - 1) / 2.0 * self.pixel_mm * self.right
            - (self.height - 1) / 2.0 * self.pixel_mm * self.down
        )

    def pixel_to_world(self, v, u) -> np.ndarray:
        """World position of pixel (row v, column u); broadcasts over arrays."""
        v = np.asarray(v, dtype=np.float64)[..., None]
        u = np.asarray(u, dtype=np.float64)[..., None]
        return self.top_left + u * self.pixel_mm * self.right + v * self.pixel_mm * self.down

    def world_to_pixel(self, point) -> tuple[float, float]:
        """(row, column) of the projection of a world point onto the plane."""
        rel = check_vector("point", point) - self.top_left
        return float(rel @ self.down) / self.pixel_mm, float(rel @ self.right) / self.pixel_mm

    @property
    def labels(self) -> Labels:
        return Labels(
            top=direction_label(-self.down),
            bottom=direction_label(self.down),
            left=direction_label(-self.right),
            right=direction_label(self.right),
        )

    def scroll(self, mm: float) -> Plane:
        """The parallel plane `mm` further along the viewing direction (slice scrolling)."""
        return replace(self, center=self.center + float(mm) * self.normal)

    def resized(self, width: int, height: int, pixel_mm: float | None = None) -> Plane:
        """Same centre and directions at another size; by default the same field of view."""
        if pixel_mm is None:
            pixel_mm = self.pixel_mm * max(self.width / width, self.height / height)
        return replace(self, width=width, height=height, pixel_mm=pixel_mm)


@dataclass(frozen=True, eq=False)
class Camera(_Frozen):
    """An orthographic camera looking along `direction` at `target`, with `up` towards the image
    top; `fov_mm` is the height of the field of view. Image centre = target."""

    target: np.ndarray
    direction: np.ndarray
    up: np.ndarray
    fov_mm: float
    width: int
    height: int

    def __post_init__(self) -> None:
        direction = check_vector("direction", self.direction, unit=True)
        up = check_vector("up", self.up, unit=True)
        up = up - (up @ direction) * direction
        if np.linalg.norm(up) < 1e-6:
            raise ValueError("up must not be parallel to direction")
        object.__setattr__(self, "target", _readonly(check_vector("target", self.target)))
        object.__setattr__(self, "direction", _readonly(direction))
        object.__setattr__(self, "up", _readonly(up / np.linalg.norm(up)))
        object.__setattr__(self, "fov_mm", check_positive("fov_mm", self.fov_mm))
        object.__setattr__(self, "width", check_size("width", self.width))
        object.__setattr__(self, "height", check_size("height", self.height))

    @property
    def plane(self) -> Plane:
        """The image plane through the target: down = -up, right = down x direction."""
        down = -self.up
        return Plane(
            self.target,
            np.cross(down, self.direction),
            down,
            self.fov_mm / self.height,
            self.width,
            self.height,
        )

    @classmethod
    def from_plane(cls, plane: Plane) -> Camera:
        return cls(
            plane.center, plane.normal, -plane.down, plane.pixel_mm * plane.height, plane.width, plane.height
        )

    @property
    def labels(self) -> Labels:
        return self.plane.labels


def _rotation(axis, degrees: float) -> np.ndarray:
    """Rotation matrix about a unit axis (right-handed, Rodrigues)."""
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    a = math.radians(degrees)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(a) * k + (1 - math.cos(a)) * (k @ k)


def orbit(camera: Camera, azimuth_deg: float = 0.0, elevation_deg: float = 0.0) -> Camera:
    """Turn the camera around its target: azimuth about the up axis, then elevation about the
    image's right axis (a trackball drag)."""
    r = _rotation(camera.up, azimuth_deg)
    direction, up = r @ camera.direction, camera.up
    right = np.cross(-up, direction)
    r = _rotation(right, elevation_deg)
    return replace(camera, direction=r @ direction, up=r @ up)


def rotate(camera: Camera, roll_deg: float) -> Camera:
    """Turn the image in its own plane about the viewing direction (clockwise on screen)."""
    return replace(camera, up=_rotation(camera.direction, roll_deg) @ camera.up)


def zoom(camera: Camera, factor: float) -> Camera:
    """Magnify by `factor` (> 1 zooms in)."""
    return replace(camera, fov_mm=camera.fov_mm / check_positive("factor", factor))


def pan(camera: Camera, right_mm: float = 0.0, down_mm: float = 0.0) -> Camera:
    """Move the target within the image plane (the picture content moves the other way)."""
    plane = camera.plane
    return replace(camera, target=camera.target + right_mm * plane.right + down_mm * plane.down)


# Standard planes: (right, down) in LPS.
STANDARD_PLANES = {
    "axial": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    "coronal": ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),
    "sagittal": ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
}


def fit_pixel(volume: Volume, right, down, width: int, height: int) -> float:
    """The pixel size (mm) at which a view centred on the volume shows the whole volume: the
    8 corner voxel centres, projected onto right and down, fit in the image."""
    rel = volume.corners() - volume.center
    extent_r = float(np.ptp(rel @ np.asarray(right, dtype=np.float64)))
    extent_d = float(np.ptp(rel @ np.asarray(down, dtype=np.float64)))
    # A voxel's own width around its centre is shown too.
    extent_r += float(volume.spacing.min())
    extent_d += float(volume.spacing.min())
    return max(extent_r / width, extent_d / height)


def plane_through(
    volume: Volume,
    right,
    down,
    center=None,
    size: tuple[int, int] = (512, 512),
    pixel_mm: float | None = None,
) -> Plane:
    """A plane through `center` (default: the volume's centre); default pixel fits the volume."""
    width, height = check_size("width", size[0]), check_size("height", size[1])
    center = volume.center if center is None else check_vector("center", center)
    if pixel_mm is None:
        pixel_mm = fit_pixel(volume, right, down, width, height)
    return Plane(center, right, down, pixel_mm, width, height)


def standard_plane(name: str, volume: Volume, center=None, size=(512, 512), pixel_mm=None) -> Plane:
    try:
        right, down = STANDARD_PLANES[name]
    except KeyError:
        raise ValueError(f"unknown plane {name!r}; known: {', '.join(STANDARD_PLANES)}") from None
    return plane_through(volume, right, down, center, size, pixel_mm)


def axial(volume: Volume, center=None, size=(512, 512), pixel_mm=None) -> Plane:
    return standard_plane("axial", volume, center, size, pixel_mm)


def coronal(volume: Volume, center=None, size=(512, 512), pixel_mm=None) -> Plane:
    return standard_plane("coronal", volume, center, size, pixel_mm)


def sagittal(volume: Volume, center=None, size=(512, 512), pixel_mm=None) -> Plane:
    return standard_plane("sagittal", volume, center, size, pixel_mm)


def oblique(normal, volume: Volume, center=None, size=(512, 512), pixel_mm=None) -> Plane:
    """A plane seen along `normal`, oriented like the nearest standard plane: the normal is
    flipped to face the same way as that plane's viewing direction, and its `down` is kept as
    closely as the tilt allows, so a slightly tilted axial still reads as an axial."""
    w = check_vector("normal", normal, unit=True)
    best = None
    for right, down in STANDARD_PLANES.values():
        ref_w = np.cross(right, down)
        if best is None or abs(w @ ref_w) > abs(w @ best[0]):
            best = (ref_w, np.asarray(down, dtype=np.float64))
    ref_w, ref_down = best
    if w @ ref_w < 0:
        w = -w
    down = ref_down - (ref_down @ w) * w
    down /= np.linalg.norm(down)
    return plane_through(volume, np.cross(down, w), down, center, size, pixel_mm)
