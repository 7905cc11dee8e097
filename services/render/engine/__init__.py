"""The render engine: views in patient space, ray grids, backends (numpy, numba, cupy),
window/level, colormaps, transfer functions, multi-resolution volumes, and `render`.

    prepared = prepare_volume(volume)                    # once per volume (backend: VOXCAST_BACKEND)
    request = ViewRequest("mpr", plane=axial(volume, size=(512, 512)), preset="lung")
    image = render(prepared, request)                    # image.rgb (H, W, 3) uint8, image.values
    preview = render(prepared, request, level=1)         # from the 2x downsampled copy
"""

from .backends import BACKENDS, BackendUnavailable, get_backend
from .colormaps import COLORMAPS
from .multires import PreparedVolume, prepare_volume
from .render import RenderedImage, render
from .request import MODES, SLAB_MODES, ViewRequest
from .transfer import TRANSFER_PRESETS, TransferFunction
from .views import (
    Camera,
    Labels,
    Plane,
    axial,
    coronal,
    fit_pixel,
    oblique,
    orbit,
    pan,
    rotate,
    sagittal,
    standard_plane,
    zoom,
)
from .window import WINDOW_PRESETS, Window

__all__ = [
    "BACKENDS",
    "COLORMAPS",
    "MODES",
    "SLAB_MODES",
    "TRANSFER_PRESETS",
    "WINDOW_PRESETS",
    "BackendUnavailable",
    "Camera",
    "Labels",
    "Plane",
    "PreparedVolume",
    "RenderedImage",
    "TransferFunction",
    "ViewRequest",
    "Window",
    "axial",
    "coronal",
    "fit_pixel",
    "get_backend",
    "oblique",
    "orbit",
    "pan",
    "prepare_volume",
    "render",
    "rotate",
    "sagittal",
    "standard_plane",
    "zoom",
]
