"""What can go wrong in a render request, and the one table that turns it into a gRPC status."""

from __future__ import annotations

import logging

import grpc

log = logging.getLogger(__name__)


class RenderServiceError(Exception):
    """Base of the errors a caller is told about; the message is shown as is."""


class InvalidArgument(RenderServiceError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class NotFound(RenderServiceError):
    pass


class Unavailable(RenderServiceError):
    """A dependency (the catalog) cannot be reached; retrying later can succeed."""


class QueueFull(RenderServiceError):
    pass


class TooLarge(RenderServiceError):
    """The request needs more memory than this process is allowed to use for it."""


STATUS = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    QueueFull: grpc.StatusCode.RESOURCE_EXHAUSTED,
    TooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
}


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status and message a caller gets for `exc`. Unexpected errors are logged with their
    traceback and reported as INTERNAL without internals."""
    for cls, code in STATUS.items():
        if isinstance(exc, cls):
            return code, str(exc)
    if isinstance(exc, ValueError):
        # The engine validates view parameters and names the field in its ValueError.
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc)
    log.exception("render failed", exc_info=exc)
    return grpc.StatusCode.INTERNAL, f"internal error in the render service ({type(exc).__name__})"
