"""The V2 REST front end.

Inference requests take a fast path: a bare ASGI handler reads the body,
checks the model's state and hands the raw bytes to the pool, where a worker
decodes, predicts and encodes. The front end never parses the JSON of an
inference request, so its CPU per request stays small and the decoding runs
on every core. Every other route (health, metadata, repository) goes
through a Starlette app, where convenience matters more than microseconds.

Every error is `{"error": "..."}` with the status of `inferpool.errors`.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import time
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from typing import Any, TypeVar

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..codecs.rest import decode_rest_request, encode_rest_response
from ..errors import (
    InferpoolError,
    InvalidRequest,
    ModelNotFound,
    PayloadTooLarge,
    RequestBodyTimeout,
    ServerShuttingDown,
    describe_exception,
    status_of,
)
from ..metrics import ServerMetrics
from ..parallel.pool import call_with_timeout
from ..parallel.transport import OUT_OF_BAND_MIN_BYTES
from ..protocol import REST_INFER
from ..repository import ModelRepository
from ..settings import Settings
from ..types import MetadataServerResponse
from .openapi import docs_page, openapi_document

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON = b"application/json"
_MODELS_PREFIX = "/v2/models/"
_INFER_SUFFIX = "/infer"
_encode_json = msgspec.json.Encoder().encode
_decode_json = msgspec.json.Decoder().decode

# A callable that returns True once the server is shutting down.
ShutdownFlag = Callable[[], bool]


class ClientDisconnected(Exception):
    """The client closed the connection before the body was read."""


def error_body(message: str) -> bytes:
    return _encode_json({"error": message})


def error_response(exc: BaseException) -> Response:
    status, _ = status_of(exc)
    headers = {"Retry-After": "1"} if status == 503 else None
    return Response(
        error_body(describe_exception(exc)),
        status,
        headers,
        media_type="application/json",
    )


def json_response(content: Any, status: int = 200) -> Response:
    return Response(_encode_json(content), status, media_type="application/json")


class RestApp:
    """The ASGI application of the REST front end."""

    def __init__(
        self,
        repository: ModelRepository,
        settings: Settings,
        shutting_down: ShutdownFlag | None = None,
        metrics: ServerMetrics | None = None,
    ) -> None:
        self._repository = repository
        self._metrics = metrics
        self._settings = settings
        self._shutting_down = shutting_down or (lambda: False)
        self._max_body = settings.max_body_size
        self._routes = Starlette(
            routes=_routes(self),
            # Starlette's handler for `Exception` responds and then re-raises,
            # so the server logs a traceback. inferpool's own errors are
            # expected outcomes and get a handler of their class instead.
            exception_handlers={
                HTTPException: _http_exception_handler,
                InferpoolError: _unexpected_exception_handler,
                Exception: _unexpected_exception_handler,
            },
        )

    @property
    def repository(self) -> ModelRepository:
        return self._repository

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            if path.startswith(_MODELS_PREFIX) and path.endswith(_INFER_SUFFIX):
                await self._infer(scope, receive, send, path)
                return
        await self._routes(scope, receive, send)

    # -- inference fast path -----------------------------------------------------

    async def _infer(
        self, scope: Scope, receive: Receive, send: Send, path: str
    ) -> None:
        started = time.perf_counter()
        model_name = ""
        try:
            model_name, version = _parse_infer_path(path)
            status, body, headers = await self._run_infer(
                scope, receive, model_name, version
            )
        except ClientDisconnected:
            self._observe(model_name, "499", started)
            return
        except Exception as exc:
            status, grpc_status = status_of(exc)
            if status >= 500 and grpc_status == "INTERNAL":
                logger.error(
                    "Inference on %s failed: %s", path, describe_exception(exc)
                )
            body = error_body(describe_exception(exc))
            headers = [(b"content-type", _JSON)]
            if status == 503:
                headers.append((b"retry-after", b"1"))
            elif status in (408, 413):
                # Part of the body may still be unread: the connection cannot
                # carry another request.
                headers.append((b"connection", b"close"))
        headers.append((b"content-length", str(len(body)).encode()))
        await send(
            {"type": "http.response.start", "status": status, "headers": headers}
        )
        await send({"type": "http.response.body", "body": body})
        self._observe(model_name, str(status), started)

    def _observe(self, model_name: str, status: str, started: float) -> None:
        if self._metrics is not None:
            self._metrics.observe_request(
                model_name, "rest", status, time.perf_counter() - started
            )

    async def _run_infer(
        self, scope: Scope, receive: Receive, name: str, version: str | None
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        if self._shutting_down():
            raise ServerShuttingDown("The server is shutting down")
        model = self._repository.get_ready(name, version)

        header_length: int | None = None
        for key, value in scope["headers"]:
            if key == b"inference-header-content-length":
                header_length = _parse_int_header(
                    "Inference-Header-Content-Length", value
                )
        body: Any = await _read_body_in_time(
            receive, self._max_body, self._settings.body_timeout
        )
        if header_length is not None and header_length > len(body):
            raise InvalidRequest(
                f"Inference-Header-Content-Length {header_length} is larger than the body ({len(body)} bytes)"
            )

        timeout = model.settings.timeout or self._settings.timeout
        if model.batcher is not None:
            # Batched models decode here, where requests from every client
            # meet, and send merged requests to the workers.
            request = decode_rest_request(body, header_length)
            response = await _until_disconnected(
                receive,
                call_with_timeout(
                    model.batcher.predict(request),
                    timeout,
                    f"Request to model {name!r}",
                ),
            )
            result_body, result_headers = encode_rest_response(response, request)
        else:
            if len(body) >= OUT_OF_BAND_MIN_BYTES:
                body = pickle.PickleBuffer(body)
            result_body, result_headers = await _until_disconnected(
                receive,
                self._repository.pool.call(
                    name,
                    model.version,
                    REST_INFER,
                    body,
                    header_length,
                    timeout=timeout,
                ),
            )
        headers = [
            (key.lower().encode(), value.encode())
            for key, value in result_headers.items()
        ]
        if not isinstance(result_body, bytes):
            result_body = bytes(result_body)
        return 200, result_body, headers

    # -- other routes ------------------------------------------------------------

    async def live(self, request: Request) -> Response:
        return Response(status_code=200)

    async def ready(self, request: Request) -> Response:
        if not self._shutting_down() and self._repository.is_ready():
            return Response(status_code=200)
        return json_response({"error": "The server is not ready"}, 503)

    async def server_metadata(self, request: Request) -> Response:
        metadata = MetadataServerResponse(
            name=self._settings.server_name,
            version=self._settings.server_version,
            extensions=["model_repository", "binary_tensor_data"],
        )
        return Response(msgspec.json.encode(metadata), media_type="application/json")

    async def model_metadata(self, request: Request) -> Response:
        name = request.path_params["name"]
        version = request.path_params.get("version")
        model = self._repository.get_ready(name, version)
        if model.metadata is None:
            model.metadata = msgspec.json.encode(
                await self._repository.pool.call(name, model.version, "metadata")
            )
        return Response(model.metadata, media_type="application/json")

    async def model_ready(self, request: Request) -> Response:
        name = request.path_params["name"]
        version = request.path_params.get("version")
        reason = self._repository.not_ready_reason(name, version)
        if not reason:
            return Response(status_code=200)
        return json_response({"error": reason}, 503)

    async def repository_index(self, request: Request) -> Response:
        ready_only = False
        body = await request.body()
        if body.strip():
            try:
                options = _decode_json(body)
            except (msgspec.DecodeError, RecursionError) as exc:
                raise InvalidRequest(
                    f"Invalid JSON in repository index request: {exc}"
                ) from None
            if not isinstance(options, dict):
                raise InvalidRequest(
                    "Invalid repository index request: expected a JSON object"
                )
            ready_only = bool(options.get("ready", False))
        items = []
        for model in self._repository.index(ready_only):
            item: dict[str, Any] = {
                "name": model.name,
                "state": model.state,
                "reason": model.reason,
            }
            if model.version is not None:
                item["version"] = model.version
            items.append(item)
        return json_response(items)

    async def repository_load(self, request: Request) -> Response:
        name = request.path_params["name"]
        if self._shutting_down():
            raise ServerShuttingDown("The server is shutting down")
        found = self._repository.find_on_disk(name)
        if not found:
            raise ModelNotFound(name)
        for settings in found:
            await self._repository.load(settings)
        return Response(status_code=200)

    async def repository_unload(self, request: Request) -> Response:
        await self._repository.unload(request.path_params["name"])
        return Response(status_code=200)

    async def openapi(self, request: Request) -> Response:
        return json_response(openapi_document(self._settings))

    async def docs(self, request: Request) -> Response:
        return Response(docs_page(self._settings), media_type="text/html")


def _routes(app: RestApp) -> list[Route]:
    return [
        Route("/v2/health/live", app.live, methods=["GET"]),
        Route("/v2/health/ready", app.ready, methods=["GET"]),
        Route("/v2", app.server_metadata, methods=["GET"]),
        Route("/v2/models/{name}", app.model_metadata, methods=["GET"]),
        Route(
            "/v2/models/{name}/versions/{version}", app.model_metadata, methods=["GET"]
        ),
        Route("/v2/models/{name}/ready", app.model_ready, methods=["GET"]),
        Route(
            "/v2/models/{name}/versions/{version}/ready",
            app.model_ready,
            methods=["GET"],
        ),
        Route("/v2/repository/index", app.repository_index, methods=["POST"]),
        Route(
            "/v2/repository/models/{name}/load", app.repository_load, methods=["POST"]
        ),
        Route(
            "/v2/repository/models/{name}/unload",
            app.repository_unload,
            methods=["POST"],
        ),
        # POST on these paths takes the fast path in `RestApp.__call__`; the
        # routes exist so that other methods get 405 rather than 404.
        Route("/v2/models/{name}/infer", app.live, methods=["POST"]),
        Route("/v2/models/{name}/versions/{version}/infer", app.live, methods=["POST"]),
        Route("/v2/docs/openapi.json", app.openapi, methods=["GET"]),
        Route("/v2/docs", app.docs, methods=["GET"]),
    ]


async def _http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"Not found: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    return Response(
        error_body(message), exc.status_code, exc.headers, media_type="application/json"
    )


async def _unexpected_exception_handler(request: Request, exc: Exception) -> Response:
    status, grpc_status = status_of(exc)
    if status >= 500 and grpc_status == "INTERNAL":
        logger.error(
            "%s %s failed: %s",
            request.method,
            request.url.path,
            describe_exception(exc),
        )
    return error_response(exc)


T = TypeVar("T")

# A client that disconnects cancels its request, but watching for that costs
# a task, so the watch starts only once a request has run this long.
_DISCONNECT_WATCH_DELAY = 0.5


async def _until_disconnected(receive: Receive, work: Coroutine[Any, Any, T]) -> T:
    """Run `work` in the current task; if the client disconnects while it
    runs, cancel it and raise `ClientDisconnected`.

    The body has been read by then, so the next `receive()` returns only
    when the client disconnects or the response has been sent.
    """
    task = asyncio.current_task()
    assert task is not None
    disconnected = False
    watcher: asyncio.Task[None] | None = None

    async def watch() -> None:
        nonlocal disconnected
        message = await receive()
        if message["type"] == "http.disconnect":
            disconnected = True
            task.cancel()

    def start_watching() -> None:
        nonlocal watcher
        watcher = asyncio.ensure_future(watch())

    handle = asyncio.get_running_loop().call_later(
        _DISCONNECT_WATCH_DELAY, start_watching
    )
    try:
        return await work
    except asyncio.CancelledError:
        if disconnected:
            _uncancel(task)
            raise ClientDisconnected() from None
        raise
    finally:
        handle.cancel()
        if watcher is not None:
            watcher.cancel()


def _parse_infer_path(path: str) -> tuple[str, str | None]:
    parts = path[len(_MODELS_PREFIX) : -len(_INFER_SUFFIX)].split("/")
    if len(parts) == 1 and parts[0]:
        return parts[0], None
    if len(parts) == 3 and parts[1] == "versions" and parts[0] and parts[2]:
        return parts[0], parts[2]
    raise ModelNotFound(path[len(_MODELS_PREFIX) : -len(_INFER_SUFFIX)])


def _parse_int_header(name: str, value: bytes) -> int:
    try:
        number = int(value)
    except ValueError:
        raise InvalidRequest(
            f"Invalid {name} header {value.decode(errors='replace')!r}: expected a non-negative integer"
        ) from None
    if number < 0:
        raise InvalidRequest(
            f"Invalid {name} header {number}: expected a non-negative integer"
        )
    return number


def _too_large(size: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"Request body of {size} bytes is larger than the limit of {limit} bytes "
        "(raise max_body_size to accept it)"
    )


def _uncancel(task: asyncio.Task[Any]) -> None:
    # A cancellation that this module requested and turned into an error of
    # its own is withdrawn, so that asyncio.timeout and task groups around
    # the handler still work (Python 3.11 and later count cancellations).
    uncancel = getattr(task, "uncancel", None)
    if uncancel is not None:
        uncancel()


async def _read_body_in_time(receive: Receive, limit: int, timeout: float) -> bytes:
    """Read the body as `_read_body` does, but raise `RequestBodyTimeout`
    when it has not arrived in full after `timeout` seconds, so that a
    client that stops halfway does not hold its connection forever."""
    task = asyncio.current_task()
    assert task is not None
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    handle = asyncio.get_running_loop().call_later(timeout, expire)
    try:
        return await _read_body(receive, limit)
    except asyncio.CancelledError:
        if expired:
            _uncancel(task)
            raise RequestBodyTimeout(
                f"The request body did not arrive in full within {timeout:g}s"
            ) from None
        raise
    finally:
        handle.cancel()


async def _read_body(receive: Receive, limit: int) -> bytes:
    """Read the whole request body, raising `PayloadTooLarge` past `limit`.

    An oversized body is still read and dropped, up to twice the limit, so
    that the client finishes sending and reads the 413 instead of seeing its
    connection reset. Beyond twice the limit the connection is closed.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected()
        chunk: bytes = message.get("body", b"")
        more = message.get("more_body", False)
        size += len(chunk)
        if size > limit:
            while more and size <= 2 * limit:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientDisconnected()
                size += len(message.get("body", b""))
                more = message.get("more_body", False)
            raise _too_large(size, limit)
        if not more:
            if not chunks:
                return chunk
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)
