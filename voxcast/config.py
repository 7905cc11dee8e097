"""One settings object, read from VOXCAST_* environment variables.

Defaults run everything on one laptop: data under ~/.voxcast, SQLite, filesystem blobs,
in-process session bus, backend auto. Scaling out changes these values, never the code.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "voxcast-development-secret-change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOXCAST_", extra="ignore")

    env: Literal["development", "production"] = Field(
        "development", description="`production` refuses default secrets"
    )
    home: Path = Field(Path("~/.voxcast"), description="data home: database, blobs, caches")
    database_url: str = Field("", description="SQLAlchemy URL; empty = SQLite file under home")
    blob_dir: Path | None = Field(None, description="where DICOM files are stored; empty = home/blobs")
    backend: Literal["auto", "numpy", "numba", "cupy"] = Field("auto", description="render backend")
    render_cache_mb: int = Field(4096, ge=64, description="render service volume cache bound (MiB)")
    render_queue: int = Field(32, ge=1, description="render requests admitted at once per process")
    render_workers: int = Field(2, ge=1, description="render threads per process")
    catalog_addr: str = Field("127.0.0.1:50051", description="catalog gRPC address")
    render_addrs: str = Field("127.0.0.1:50052", description="render gRPC addresses, comma-separated")
    render_discovery: Literal["static", "kubernetes"] = Field(
        "static", description="`kubernetes` watches the render Service's EndpointSlices"
    )
    catalog_port: int = Field(50051, description="catalog gRPC port")
    render_port: int = Field(50052, description="render gRPC port")
    gateway_port: int = Field(8000, description="gateway HTTP port")
    metrics_port: int = Field(0, description="Prometheus metrics port of a gRPC service (0 = off)")
    redis_url: str = Field("", description="Redis URL for shared sessions; empty = in-process bus")
    secret_key: str = Field(DEV_SECRET, description="signs access tokens and share links")
    token_minutes: int = Field(60, ge=1, description="access token lifetime")
    login_max_failures: int = Field(
        5, ge=1, description="failed sign-ins (or wrong PINs of one share link) per window before 429"
    )
    login_max_failures_per_address: int = Field(
        50, ge=1, description="failed sign-ins (or wrong share PINs) from one client address per window"
    )
    login_window_s: int = Field(900, ge=1, description="seconds over which failed sign-ins are counted")
    forwarded_allow_ips: str = Field(
        "", description="proxies whose X-Forwarded-For is trusted (IPs/CIDRs, comma-separated); empty = none"
    )
    log_level: str = Field("INFO", description="Python logging level")

    @model_validator(mode="after")
    def _check(self) -> Settings:
        self.home = self.home.expanduser()
        if self.env == "production" and self.secret_key == DEV_SECRET:
            raise ValueError("VOXCAST_SECRET_KEY must be set in production")
        return self

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'catalog.db'}"

    @property
    def blobs(self) -> Path:
        return (self.blob_dir or self.home / "blobs").expanduser()

    @property
    def render_addr_list(self) -> list[str]:
        return [a.strip() for a in self.render_addrs.split(",") if a.strip()]


@lru_cache
def get_settings() -> Settings:
    return Settings()
