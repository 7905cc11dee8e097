"""The audit log of study access (admins only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from voxcast.gateway.api.deps import AdminDep, StoreDep
from voxcast.gateway.api.schemas import ERRORS, AuditOut

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", response_model=list[AuditOut], responses=ERRORS)
async def audit_log(
    principal: AdminDep,
    store: StoreDep,
    study_uid: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditOut]:
    """Who accessed which study, when and from where; newest first."""
    return [
        AuditOut(at=e.at, principal=e.principal, study_uid=e.study_uid, action=e.action, remote=e.remote)
        for e in store.audit_entries(study_uid, limit)
    ]
