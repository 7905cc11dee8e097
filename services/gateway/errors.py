"""One table from gRPC status to what the gateway tells its clients: a WebSocket error event (or a
close code) and an HTTP status for REST. Every place that calls a backend goes through it."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from fastapi import HTTPException

# WebSocket close codes. The standard ones are for protocol violations; the 44xx ones (application
# range, mirroring HTTP) are for authentication. A bad message never closes the connection.
WS_1003_UNSUPPORTED_DATA = 1003  # the client sent a binary message
WS_1008_POLICY_VIOLATION = 1008  # flooding, or no auth message in time
WS_1009_MESSAGE_TOO_BIG = 1009
WS_1011_INTERNAL_ERROR = 1011
WS_4401_UNAUTHORIZED = 4401  # no, invalid or expired token; revoked share link
WS_4403_FORBIDDEN = 4403  # the token is valid but may not use the viewer


@dataclass(frozen=True)
class ErrorKind:
    code: str  # the `code` of the WebSocket error event and of the REST error body
    http_status: int
    ws_close: int | None = None  # when set, the WebSocket is closed instead of getting an event


GRPC_ERRORS: dict[grpc.StatusCode, ErrorKind] = {
    grpc.StatusCode.INVALID_ARGUMENT: ErrorKind("invalid_argument", 400),
    grpc.StatusCode.OUT_OF_RANGE: ErrorKind("invalid_argument", 400),
    grpc.StatusCode.NOT_FOUND: ErrorKind("not_found", 404),
    grpc.StatusCode.FAILED_PRECONDITION: ErrorKind("failed_precondition", 409),
    grpc.StatusCode.PERMISSION_DENIED: ErrorKind("forbidden", 403),
    grpc.StatusCode.UNAUTHENTICATED: ErrorKind("unauthorized", 401, WS_4401_UNAUTHORIZED),
    grpc.StatusCode.RESOURCE_EXHAUSTED: ErrorKind("busy", 503),
    grpc.StatusCode.UNAVAILABLE: ErrorKind("unavailable", 503),
    grpc.StatusCode.DEADLINE_EXCEEDED: ErrorKind("timeout", 504),
    grpc.StatusCode.CANCELLED: ErrorKind("cancelled", 503),
}
INTERNAL = ErrorKind("internal", 500)


def error_kind(code: grpc.StatusCode | None) -> ErrorKind:
    return GRPC_ERRORS.get(code, INTERNAL) if code is not None else INTERNAL


def grpc_message(exc: grpc.RpcError) -> str:
    details = exc.details() if hasattr(exc, "details") else None
    return details or str(exc)


def http_error(exc: grpc.RpcError, what: str) -> HTTPException:
    """An HTTPException for a failed backend call; `what` names the backend call for the message."""
    kind = error_kind(exc.code() if hasattr(exc, "code") else None)
    return HTTPException(
        kind.http_status, detail={"code": kind.code, "message": f"{what}: {grpc_message(exc)}"}
    )


def rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    """A gRPC error raised by the gateway itself (no backend to ask, an unexpected failure)."""
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)
