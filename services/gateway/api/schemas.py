"""Request and response bodies of the REST API (they make the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from voxcast.v1 import catalog_pb2


class ErrorBody(BaseModel):
    code: str
    message: str


class Error(BaseModel):
    detail: ErrorBody


ERRORS = {
    401: {"model": Error, "description": "no or invalid token"},
    403: {"model": Error, "description": "not allowed for this principal"},
    404: {"model": Error, "description": "not found"},
    503: {"model": Error, "description": "a backend service is unavailable or busy"},
}

THROTTLED = {
    429: {
        "model": Error,
        "description": "too many failed attempts (`too_many_attempts`); wait `Retry-After` seconds",
    },
}


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class PrincipalOut(BaseModel):
    name: str
    role: str
    study_uid: str | None = None


class AuthMode(BaseModel):
    sign_in_required: bool


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="seconds")
    user: PrincipalOut


class StudyOut(BaseModel):
    study_uid: str
    patient_name: str
    patient_id: str
    study_date: str
    description: str
    accession_number: str
    modalities: list[str]
    num_series: int
    num_instances: int

    @classmethod
    def of(cls, s: catalog_pb2.Study) -> StudyOut:
        return cls(
            study_uid=s.study_uid,
            patient_name=s.patient_name,
            patient_id=s.patient_id,
            study_date=s.study_date,
            description=s.description,
            accession_number=s.accession_number,
            modalities=list(s.modalities),
            num_series=s.num_series,
            num_instances=s.num_instances,
        )


class GeometryOut(BaseModel):
    shape: list[int]
    spacing_mm: list[float]
    origin_lps: list[float]
    direction: list[float]
    units: str
    dtype: str
    warnings: list[str]


class SeriesOut(BaseModel):
    series_uid: str
    study_uid: str
    modality: str
    description: str
    series_number: int
    num_instances: int
    is_volume: bool
    not_volume_reason: str
    frame_of_reference_uid: str
    geometry: GeometryOut | None
    thumbnail_url: str | None

    @classmethod
    def of(cls, s: catalog_pb2.Series) -> SeriesOut:
        g = s.geometry
        geometry = None
        if s.is_volume:
            geometry = GeometryOut(
                shape=list(g.shape),
                spacing_mm=list(g.spacing_mm),
                origin_lps=[g.origin_lps.x, g.origin_lps.y, g.origin_lps.z],
                direction=list(g.direction),
                units=g.units,
                dtype=g.dtype,
                warnings=list(g.warnings),
            )
        return cls(
            series_uid=s.series_uid,
            study_uid=s.study_uid,
            modality=s.modality,
            description=s.description,
            series_number=s.series_number,
            num_instances=s.num_instances,
            is_volume=s.is_volume,
            not_volume_reason=s.not_volume_reason,
            frame_of_reference_uid=s.frame_of_reference_uid,
            geometry=geometry,
            thumbnail_url=f"/api/series/{s.series_uid}/thumbnail" if s.is_volume else None,
        )


class IngestResultOut(BaseModel):
    file: str = Field(description="the uploaded file (a path inside it for zip archives)")
    status: str = Field(description="indexed, duplicate or rejected")
    reason: str = ""
    study_uid: str = ""
    series_uid: str = ""
    sop_instance_uid: str = ""


class UploadOut(BaseModel):
    indexed: int
    duplicate: int
    rejected: int
    results: list[IngestResultOut]


class ShareCreate(BaseModel):
    study_uid: str = Field(min_length=1, max_length=64)
    expires_minutes: int = Field(1440, ge=1, le=60 * 24 * 90, description="lifetime, at most 90 days")
    pin: str | None = Field(
        None, min_length=4, max_length=32, description="asked for when the link is opened"
    )


class ShareOut(BaseModel):
    id: int
    study_uid: str
    created_at: datetime
    expires_at: datetime
    has_pin: bool
    revoked_at: datetime | None
    active: bool


class ShareCreated(ShareOut):
    token: str = Field(description="the link's secret; shown once")
    url: str = Field(description="the viewer URL to send")


class ShareInfo(BaseModel):
    pin_required: bool
    expires_at: datetime


class ShareOpen(BaseModel):
    pin: str | None = Field(None, max_length=32)


class AuditOut(BaseModel):
    at: datetime
    principal: str
    study_uid: str
    action: str
    remote: str


class BackendHealth(BaseModel):
    addr: str
    reachable: bool


class HealthOut(BaseModel):
    status: str = Field(description="ok, or degraded when the catalog or every render service is down")
    catalog: BackendHealth
    render: list[BackendHealth]
