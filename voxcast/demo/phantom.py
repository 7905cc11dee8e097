"""A synthetic torso, defined once in patient space (LPS, mm) and sampled on CT and PET grids.

The anatomy is a list of simple shapes (ellipses, ellipsoids, tubes, bands) painted in order, later
ones over earlier ones, each with a CT value (HU) and a PET uptake (SUVbw). Sampling is done one axial
slice at a time with NumPy, painting each shape only inside its bounding window, so a 512x512x400 CT
is made in seconds and needs little more memory than its int16 voxels.

World frame: x to the patient's left, y to the posterior, z to the head; the body axis is x = y = 0,
the volumes are centred on it. Slice index k grows with z (slice 0 is the most inferior).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from pydicom.uid import generate_uid
from scipy.ndimage import gaussian_filter

from voxcast.volume import Volume

AXIAL = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])  # slice, row, column axes in LPS
AIR_HU = -1000.0
CT_NOISE_HU = 12.0
PET_NOISE_FRACTION = 0.10  # relative standard deviation of the PET background
PET_RESOLUTION_MM = 7.0  # FWHM of the Gaussian that blurs the PET background


@dataclass(frozen=True)
class Grid:
    shape: tuple[int, int, int]  # slices, rows, columns
    spacing: tuple[float, float, float]  # mm: slice, row, column
    center: tuple[float, float, float] = (0.0, 0.0, 0.0)  # LPS of the middle of the grid

    @property
    def origin(self) -> np.ndarray:
        half = (np.asarray(self.shape) - 1) / 2.0 * np.asarray(self.spacing)
        return np.asarray(self.center) - AXIAL.T @ half

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World z of each slice, y of each row, x of each column."""
        o = self.origin
        return tuple(
            o[axis] + np.arange(n) * s for axis, n, s in zip((2, 1, 0), self.shape, self.spacing, strict=True)
        )


@dataclass(frozen=True)
class SizePreset:
    ct: Grid
    pet: Grid


# Every size images the same patient (500 mm of torso, 400 mm CT field of view); only sampling differs.
# The PET grid is coarser, wider and shifted along z, as on a real PET/CT.
SIZES = {
    "small": SizePreset(
        ct=Grid((48, 64, 64), (10.0, 6.25, 6.25)),
        pet=Grid((42, 40, 40), (12.0, 12.5, 12.5), center=(0.0, 0.0, 6.0)),
    ),
    "medium": SizePreset(
        ct=Grid((160, 256, 256), (3.0, 1.5625, 1.5625)),
        pet=Grid((120, 100, 100), (4.0, 5.0, 5.0), center=(0.0, 0.0, 6.0)),
    ),
    "large": SizePreset(
        ct=Grid((400, 512, 512), (1.25, 0.78125, 0.78125)),
        pet=Grid((128, 128, 128), (4.0, 4.0, 4.0), center=(0.0, 0.0, 6.0)),
    ),
}


def size_preset(size: str) -> SizePreset:
    try:
        return SIZES[size]
    except KeyError:
        raise ValueError(f"unknown demo size {size!r}; known: {', '.join(SIZES)}") from None


def check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def demo_uid(size: str, seed: int, what: str) -> str:
    """A UID that depends only on (size, seed, what): the same demo study always gets the same UIDs."""
    return generate_uid(entropy_srcs=["voxcast-demo", size, str(seed), what])


@dataclass(frozen=True)
class Lesion:
    """A sphere of uniform uptake whose SUVbw is known exactly."""

    label: str
    center_lps: tuple[float, float, float]
    radius_mm: float
    suv: float
    hu: float

    def as_dict(self) -> dict:
        return {
            "label": self.label,
            "center_lps": list(self.center_lps),
            "radius_mm": self.radius_mm,
            "suv": self.suv,
        }


# Radii exceed half the diagonal of the coarsest PET voxel (12.5 x 12.5 x 12 mm): on every grid at
# least the voxel nearest to each centre lies inside its lesion.
LESIONS = (
    Lesion("liver metastasis", (-70.0, 10.0, 5.0), 20.0, 4.0, 35.0),
    Lesion("right lung nodule", (-90.0, 0.0, 150.0), 15.0, 8.0, 30.0),
    Lesion("right paratracheal node", (-28.0, 5.0, 185.0), 12.0, 12.0, 40.0),
)


# ---- slice painting ----------------------------------------------------------------------------


class Plane:
    """The in-plane sampling shared by every slice of a grid, with what depends only on (x, y)."""

    def __init__(self, xs: np.ndarray, ys: np.ndarray):
        self.xs, self.ys = xs, ys

    @cached_property
    def rib_shift(self) -> np.ndarray:
        """How much higher than its front end a rib lies at each pixel's angle around the body axis."""
        theta = np.arctan2(self.xs[None, :], self.ys[:, None])  # 0 = posterior, +-pi = anterior
        return (RIB_DROP_MM * (1.0 - np.cos(theta)) / 2.0).astype(np.float32)

    @cached_property
    def rib_sector(self) -> np.ndarray:
        """0 where there is no rib (at the spine), 1 for bone, 2 for costal cartilage (near the sternum)."""
        theta = np.abs(np.arctan2(self.xs[None, :], self.ys[:, None]))
        return np.where(theta <= 0.3, 0, np.where(theta > np.pi - 0.55, 2, 1)).astype(np.uint8)


class Slice:
    """One axial slice being painted: `values[row, column]` at world y = ys[row], x = xs[column]."""

    def __init__(self, z: float, plane: Plane, fill: float):
        self.z, self.plane, self.xs, self.ys = z, plane, plane.xs, plane.ys
        self.values = np.full((self.ys.size, self.xs.size), fill, dtype=np.float32)

    def window(self, x0, x1, y0, y1):
        """Index ranges and coordinates of the part of the slice inside the box [x0,x1] x [y0,y1]."""
        c0, c1 = np.searchsorted(self.xs, [x0, x1])
        r0, r1 = np.searchsorted(self.ys, [y0, y1])
        return (slice(r0, r1), slice(c0, c1)), self.xs[None, c0:c1], self.ys[r0:r1, None]

    def ellipse(self, cx, cy, a, b, value, inner=None, where=None):
        """Fill the ellipse (minus the concentric `inner` (a, b) ellipse); `where(x, y)` limits it more."""
        if a <= 0 or b <= 0:
            return
        win, x, y = self.window(cx - a, cx + a, cy - b, cy + b)
        if x.size == 0 or y.size == 0:
            return
        u, v = (x - cx) / a, (y - cy) / b
        mask = u * u + v * v <= 1.0
        if inner is not None and inner[0] > 0 and inner[1] > 0:
            ui, vi = (x - cx) / inner[0], (y - cy) / inner[1]
            mask &= ui * ui + vi * vi > 1.0
        if where is not None:
            mask &= where(x, y)
        self.values[win][mask] = value

    def ellipsoid(self, center, semi, value):
        dz = (self.z - center[2]) / semi[2]
        if abs(dz) < 1.0:
            f = np.sqrt(1.0 - dz * dz)
            self.ellipse(center[0], center[1], semi[0] * f, semi[1] * f, value)

    def box(self, x0, x1, y0, y1, value):
        win, x, y = self.window(x0, x1, y0, y1)
        self.values[win] = value


# ---- anatomy -----------------------------------------------------------------------------------

# Body outline semi-axes (left-right a, antero-posterior b) along z: pelvis, abdomen, chest, neck.
BODY_Z = [-300.0, -180.0, -60.0, 40.0, 190.0, 225.0, 240.0, 300.0]
BODY_A = [165.0, 172.0, 158.0, 160.0, 168.0, 150.0, 70.0, 60.0]
BODY_B = [112.0, 115.0, 118.0, 115.0, 112.0, 100.0, 62.0, 58.0]
FAT_MM = 14.0
SPINE_Y = 62.0  # centre of the vertebral bodies
VERTEBRA_PITCH_MM = 30.0
DISC_MM = 6.0
RIBS_Z = (15.0, 215.0)
RIB_PITCH_MM = 22.0
RIB_HEIGHT_MM = 9.0
RIB_DROP_MM = 45.0  # how much lower the front end of a rib lies than its back end
LUNG_APEX_Z = 232.0
LUNG_BASE_Z = {-1: 60.0, 1: 45.0}  # the right (-x) base sits higher, over the liver


@dataclass(frozen=True)
class Tissue:
    hu: float
    suv: float


FAT = Tissue(-100.0, 0.4)
MUSCLE = Tissue(45.0, 0.9)
VISCERA = Tissue(30.0, 1.0)
LUNG = Tissue(-850.0, 0.35)
VESSEL = Tissue(40.0, 1.6)
AIR = Tissue(-1000.0, 0.0)
BLOOD = Tissue(42.0, 1.6)
HEART = Tissue(50.0, 3.0)
LIVER = Tissue(58.0, 2.0)
SPLEEN = Tissue(50.0, 1.8)
KIDNEY = Tissue(35.0, 3.5)
BLADDER = Tissue(8.0, 8.0)
CORTICAL_BONE = Tissue(1150.0, 0.5)
MARROW_BONE = Tissue(650.0, 1.5)
RIB = Tissue(900.0, 0.8)
CARTILAGE = Tissue(150.0, 0.6)
DISC = Tissue(85.0, 0.8)
CSF = Tissue(15.0, 0.5)
GAS = Tissue(-900.0, 0.0)


@dataclass(frozen=True)
class Vessel:
    """A lung vessel: a straight tube from the hilum outwards, thinning along its length."""

    start: np.ndarray
    end: np.ndarray
    radius_start: float
    radius_end: float


class Anatomy:
    """The phantom patient. Seeded parts (lung vessels, bowel gas) vary with the seed; organs and
    lesions do not, so lesion positions are the same for every seed and size."""

    def __init__(self, seed: int):
        rng = np.random.default_rng([seed, 1])
        self.vessels = self._lung_vessels(rng)
        self.gas = [
            (
                np.array([rng.uniform(-90, 90), rng.uniform(-60, 20), rng.uniform(-200, -70)]),
                np.array([rng.uniform(10, 22), rng.uniform(8, 18), rng.uniform(10, 25)]),
            )
            for _ in range(8)
        ]

    @staticmethod
    def _lung_vessels(rng: np.random.Generator) -> list[Vessel]:
        vessels = []
        for side in (-1, 1):
            hilum = np.array([side * 45.0, 10.0, 135.0])
            for _ in range(14):
                end = np.array(
                    [
                        side * rng.uniform(50, 135),
                        rng.uniform(-60, 70),
                        rng.uniform(LUNG_BASE_Z[side] + 10, 215),
                    ]
                )
                vessels.append(Vessel(hilum, end, rng.uniform(3.5, 6.0), rng.uniform(1.0, 2.0)))
        return vessels

    def paint(self, s: Slice, prop: str) -> None:
        """Paint every structure crossing slice `s`; `prop` is "hu" or "suv"."""
        z = s.z

        def v(tissue: Tissue) -> float:
            return getattr(tissue, prop)

        a, b = float(np.interp(z, BODY_Z, BODY_A)), float(np.interp(z, BODY_Z, BODY_B))
        s.ellipse(0.0, 0.0, a, b, v(FAT))
        s.ellipse(0.0, 0.0, a - FAT_MM, b - FAT_MM, v(MUSCLE))
        ai, bi = a - FAT_MM - 18.0, b - FAT_MM - 18.0  # inside the body wall
        if z < 40.0:
            s.ellipse(0.0, -5.0, ai, bi * 0.85, v(VISCERA))
        self._lungs(s, v)
        if 120.0 < z < 240.0:  # trachea, splitting into the main bronchi at the carina
            if z > 150.0:
                s.ellipse(0.0, 20.0, 10.0, 9.0, v(AIR))
            else:
                for side in (-1, 1):
                    t = (150.0 - z) / 30.0
                    s.ellipse(side * (12.0 + 30.0 * t), 20.0 - 8.0 * t, 7.0, 7.0, v(AIR))
        s.ellipsoid((20.0, -25.0, 115.0), (62.0, 52.0, 55.0), v(HEART))
        if -150.0 < z < 160.0:
            s.ellipse(25.0, SPINE_Y - 28.0, 12.0, 12.0, v(BLOOD))  # descending aorta
        if 115.0 < z < 175.0:
            s.ellipse(0.0, -15.0, 15.0, 15.0, v(BLOOD))  # ascending aorta
        s.ellipsoid((-55.0, 5.0, 20.0), (75.0, 80.0, 75.0), v(LIVER))
        s.ellipsoid((85.0, 45.0, 30.0), (32.0, 26.0, 50.0), v(SPLEEN))
        for side in (-1, 1):
            s.ellipsoid((side * 70.0, 58.0, -45.0), (28.0, 24.0, 55.0), v(KIDNEY))
        s.ellipsoid((0.0, -40.0, -230.0), (48.0, 38.0, 32.0), v(BLADDER))
        for center, semi in self.gas:
            s.ellipsoid(center, semi, v(GAS))
        self._spine(s, v, b)
        self._ribs(s, v, a, b)
        if 60.0 < z < 200.0:  # sternum, just under the anterior fat
            s.box(-14.0, 14.0, -(b - FAT_MM - 3.0), -(b - FAT_MM - 14.0), v(MARROW_BONE))
        if z < -165.0:  # iliac wings: posterolateral arcs of bone
            for side in (-1, 1):
                s.ellipse(
                    side * 85.0, 35.0, 45.0, 38.0, v(CORTICAL_BONE), inner=(37.0, 30.0),
                    where=lambda x, y, side=side: (y > 20.0) | (side * x > 110.0),
                )  # fmt: skip
        for lesion in LESIONS:
            s.ellipsoid(lesion.center_lps, (lesion.radius_mm,) * 3, getattr(lesion, prop))

    def _lungs(self, s: Slice, v) -> None:
        for side in (-1, 1):
            base = LUNG_BASE_Z[side]
            if not base < s.z < LUNG_APEX_Z:
                continue
            t = (s.z - base) / (LUNG_APEX_Z - base)
            # Widest just above the diaphragm dome, rounding off to the apex.
            f = np.sqrt(max(0.0, 1.0 - t * t)) * min(1.0, np.sqrt(t / 0.12))
            s.ellipse(side * 82.0, 5.0, 62.0 * f, 78.0 * f, v(LUNG), where=lambda x, y: np.abs(x) > 22.0)
        for vessel in self.vessels:
            z0, z1 = vessel.start[2], vessel.end[2]
            lo, hi = min(z0, z1), max(z0, z1)
            if lo <= s.z <= hi and hi > lo:
                u = (s.z - z0) / (z1 - z0)
                c = vessel.start + u * (vessel.end - vessel.start)
                r = vessel.radius_start + u * (vessel.radius_end - vessel.radius_start)
                s.ellipse(c[0], c[1], r, r, v(VESSEL))

    @staticmethod
    def _spine(s: Slice, v, body_b: float) -> None:
        z = s.z
        cervical = z > 225.0
        radius = 12.0 if cervical else 20.0 + 4.0 * float(np.clip((40.0 - z) / 200.0, 0.0, 1.0))
        if (z % VERTEBRA_PITCH_MM) < DISC_MM:
            s.ellipse(0.0, SPINE_Y, radius, radius * 0.85, v(DISC))
        else:
            s.ellipse(0.0, SPINE_Y, radius, radius * 0.85, v(CORTICAL_BONE))
            s.ellipse(0.0, SPINE_Y, radius - 2.5, radius * 0.85 - 2.5, v(MARROW_BONE))
            canal_y = SPINE_Y + radius * 0.85 + 9.0
            s.ellipse(0.0, canal_y, 16.0, 14.0, v(CORTICAL_BONE), where=lambda x, y: y > canal_y - 6.0)
            s.box(-5.0, 5.0, canal_y + 12.0, min(canal_y + 35.0, body_b - FAT_MM), v(CORTICAL_BONE))
        canal_y = SPINE_Y + radius * 0.85 + 9.0
        s.ellipse(0.0, canal_y, 9.0, 8.0, v(CSF))

    @staticmethod
    def _ribs(s: Slice, v, a: float, b: float) -> None:
        if not RIBS_Z[0] < s.z < RIBS_Z[1]:
            return
        ra, rb = a - FAT_MM - 6.0, b - FAT_MM - 6.0
        win, x, y = s.window(-ra - 6.0, ra + 6.0, -rb - 6.0, rb + 6.0)
        rho2 = (x / ra) ** 2 + (y / rb) ** 2
        half_width = 9.0 / (ra + rb)  # 4.5 mm either side of the rib ellipse, in units of its radius
        band = (rho2 > (1.0 - half_width) ** 2) & (rho2 < (1.0 + half_width) ** 2)
        # A rib runs down from the spine towards the front: its height depends on the angle.
        phase = (s.z - RIBS_Z[0] + s.plane.rib_shift[win]) % RIB_PITCH_MM
        sector = s.plane.rib_sector[win]
        rib = band & (phase < RIB_HEIGHT_MM)
        s.values[win][rib & (sector == 1)] = v(RIB)
        s.values[win][rib & (sector == 2)] = v(CARTILAGE)


# ---- sampling ----------------------------------------------------------------------------------


def make_ct_phantom(size: str = "small", seed: int = 0) -> Volume:
    """The phantom's CT in HU (int16 voxels, Gaussian noise seeded by `seed`), axial, LPS."""
    check_seed(seed)
    grid = size_preset(size).ct
    anatomy = Anatomy(seed)
    rng = np.random.default_rng([seed, 2])
    voxels = np.empty(grid.shape, dtype=np.int16)
    zs, ys, xs = grid.axes()
    plane = Plane(xs, ys)
    pixels = ys.size * xs.size
    # Noise for each slice is a window at a random offset into one bank: uncorrelated to the eye,
    # and several times cheaper than fresh normal deviates for every voxel.
    bank = rng.standard_normal(4 * pixels, dtype=np.float32) * np.float32(CT_NOISE_HU)
    for k, z in enumerate(zs):
        s = Slice(float(z), plane, AIR_HU)
        anatomy.paint(s, "hu")
        offset = int(rng.integers(0, bank.size - pixels + 1))
        s.values += bank[offset : offset + pixels].reshape(s.values.shape)
        np.clip(s.values, -1024.0, 3071.0, out=s.values)
        np.rint(s.values, out=s.values)
        voxels[k] = s.values
    return Volume.from_geometry(
        voxels, grid.origin, grid.spacing, AXIAL,
        frame_of_reference_uid=demo_uid(size, seed, "frame-of-reference"), modality="CT", units="HU",
    )  # fmt: skip


def make_pet_phantom(ct_or_size: Volume | str = "small", seed: int = 0) -> tuple[Volume, list[dict]]:
    """The phantom's PET in SUVbw on the coarser PET grid of the same size preset, and its lesions.

    Given the CT Volume, the PET takes its frame of reference and the preset whose CT grid it matches.
    The background is blurred (PET resolution) and noisy; lesions are painted last, exactly at their SUV,
    so a voxel whose centre lies in a lesion reads that lesion's SUV.
    Returns (volume, [{"label", "center_lps": [x, y, z], "radius_mm", "suv"}, ...]).
    """
    check_seed(seed)
    if isinstance(ct_or_size, Volume):
        size = _size_of_ct(ct_or_size)
        for_uid = ct_or_size.frame_of_reference_uid
    else:
        size = ct_or_size
        for_uid = demo_uid(size, seed, "frame-of-reference")
    grid = size_preset(size).pet
    anatomy = Anatomy(seed)
    rng = np.random.default_rng([seed, 3])
    suv = np.empty(grid.shape, dtype=np.float32)
    zs, ys, xs = grid.axes()
    plane = Plane(xs, ys)
    for k, z in enumerate(zs):
        s = Slice(float(z), plane, 0.0)
        anatomy.paint(s, "suv")
        suv[k] = s.values
    sigma = PET_RESOLUTION_MM / 2.3548 / np.asarray(grid.spacing)
    suv = gaussian_filter(suv, sigma, mode="constant")
    suv *= 1.0 + PET_NOISE_FRACTION * rng.standard_normal(suv.shape, dtype=np.float32)
    np.clip(suv, 0.0, None, out=suv)
    _paint_lesions(suv, grid)
    volume = Volume.from_geometry(
        suv, grid.origin, grid.spacing, AXIAL,
        frame_of_reference_uid=for_uid, modality="PT", units="SUVbw",
    )  # fmt: skip
    return volume, [lesion.as_dict() for lesion in LESIONS]


def _paint_lesions(suv: np.ndarray, grid: Grid) -> None:
    zs, ys, xs = grid.axes()
    for lesion in LESIONS:
        cx, cy, cz = lesion.center_lps
        r = lesion.radius_mm
        kz = np.nonzero(np.abs(zs - cz) <= r)[0]
        if kz.size == 0:
            continue
        d2 = (zs[kz, None, None] - cz) ** 2 + (ys[None, :, None] - cy) ** 2 + (xs[None, None, :] - cx) ** 2
        block = suv[kz]
        block[d2 <= r * r] = lesion.suv
        suv[kz] = block


def _size_of_ct(ct: Volume) -> str:
    for name, preset in SIZES.items():
        if ct.shape == preset.ct.shape and np.allclose(ct.spacing, preset.ct.spacing):
            return name
    known = ", ".join(f"{n} {p.ct.shape}" for n, p in SIZES.items())
    raise ValueError(f"CT of shape {ct.shape} was not made by make_ct_phantom; its sizes are: {known}")
