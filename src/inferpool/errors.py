"""Errors that inferpool raises, each with the status code a client receives.

Every class derives from `InferpoolError`, which carries an HTTP status code
and the matching gRPC status name. The REST and gRPC front ends turn any
`InferpoolError` into a response with that status and `{"error": message}`;
any other exception is a 500 whose message names the exception's class.

The classes pickle by their message alone (see `InferpoolError.__reduce__`),
so an error raised in a worker process is rebuilt exactly in the front end.
"""

from __future__ import annotations

from typing import Any


class InferpoolError(Exception):
    """Base of every inferpool error: a message and the status it maps to.

    Raised directly only for conditions that have no class of their own.
    """

    status_code: int = 500
    grpc_status: str = "INTERNAL"

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuild from the formatted message, whatever the subclass's own
        # constructor takes, so that the class survives the trip from a worker.
        return (_rebuild_error, (type(self), self.message, self.status_code))

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


def _rebuild_error(
    cls: type[InferpoolError], message: str, status_code: int
) -> InferpoolError:
    error = cls.__new__(cls)
    InferpoolError.__init__(error, message, status_code)
    return error


class InvalidRequest(InferpoolError):
    """The request is malformed: bad JSON, a shape that disagrees with the
    data, an unknown datatype. The message names the field and the problem.
    """

    status_code = 400
    grpc_status = "INVALID_ARGUMENT"


class ModelNotFound(InferpoolError):
    """No model of that name, or no such version of it, is registered."""

    status_code = 404
    grpc_status = "NOT_FOUND"

    def __init__(self, name: str, version: str | None = None) -> None:
        if version:
            message = f"Model {name!r} with version {version!r} not found"
        else:
            message = f"Model {name!r} not found"
        super().__init__(message)
        self.name = name
        self.version = version


class ModelNotReady(InferpoolError):
    """The model is registered but cannot serve now: it is still loading,
    failed to load, or is being unloaded. Unlike `ModelNotFound`, retrying
    later may succeed.
    """

    status_code = 503
    grpc_status = "UNAVAILABLE"


class ModelLoadError(InferpoolError):
    """Loading a model failed; the message names the model, the worker where
    it failed, and the cause. The model is loaded on no worker afterwards.
    """

    status_code = 500
    grpc_status = "INTERNAL"


class PayloadTooLarge(InferpoolError):
    """The request body is larger than the configured maximum."""

    status_code = 413
    grpc_status = "RESOURCE_EXHAUSTED"


class RequestBodyTimeout(InferpoolError):
    """The client did not send the whole request body in time."""

    status_code = 408
    grpc_status = "DEADLINE_EXCEEDED"


class ServerOverloaded(InferpoolError):
    """The model's queue is full, or no worker can take the request now.

    Raised at once instead of queueing without bound; clients should retry
    after a short delay (REST responses carry `Retry-After`).
    """

    status_code = 503
    grpc_status = "UNAVAILABLE"


class ServerShuttingDown(InferpoolError):
    """The server is draining and accepts no new requests."""

    status_code = 503
    grpc_status = "UNAVAILABLE"


class RequestTimeout(InferpoolError):
    """The request took longer than the model's `timeout`; it was cancelled
    and a late response from the worker is dropped.
    """

    status_code = 504
    grpc_status = "DEADLINE_EXCEEDED"


class ModelError(InferpoolError):
    """The model raised an exception that could not be rebuilt in the calling
    process (its class cannot be imported or unpickled there). The message
    names the exception's class and its text.
    """

    status_code = 500
    grpc_status = "INTERNAL"

    def __init__(self, exc_type: str, exc_message: str) -> None:
        shown = exc_type.removeprefix("builtins.")
        super().__init__(f"{shown}: {exc_message}" if exc_message else shown)
        self.exc_type = exc_type
        self.exc_message = exc_message


def describe_exception(exc: BaseException) -> str:
    """Return `exc` as a client sees it: an inferpool error's own message,
    otherwise the exception's class (with its module, except for builtins)
    and its text."""
    if isinstance(exc, InferpoolError):
        return exc.message
    cls = type(exc)
    name = (
        cls.__qualname__
        if cls.__module__ == "builtins"
        else f"{cls.__module__}.{cls.__qualname__}"
    )
    text = str(exc)
    return f"{name}: {text}" if text else name


def status_of(exc: BaseException) -> tuple[int, str]:
    """Return the HTTP status code and the gRPC status name for `exc`."""
    if isinstance(exc, InferpoolError):
        return exc.status_code, exc.grpc_status
    return 500, "INTERNAL"
