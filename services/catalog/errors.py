"""Domain errors of the catalog. The gRPC server turns each into its status code in one table."""

from __future__ import annotations


class CatalogError(Exception):
    """Base class: a request the catalog cannot serve, with a message for a human."""


class InvalidArgument(CatalogError):
    """The request itself is malformed (empty upload, bad chunk size...)."""


class NotFound(CatalogError):
    """No study, series or instance with that UID."""


class NotAVolume(CatalogError):
    """The series exists but cannot be assembled into a volume; the message says why."""
