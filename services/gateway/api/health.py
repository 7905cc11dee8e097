"""Liveness of the gateway and reachability of its backends."""

from __future__ import annotations

from fastapi import APIRouter
from voxcast.gateway.api.deps import BackendsDep
from voxcast.gateway.api.schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthOut)
async def health(backends: BackendsDep) -> HealthOut:
    """Always 200 while the gateway runs; `status` says whether the catalog and a render service answer."""
    return HealthOut(**await backends.health())
