"""The V2 gRPC front end: `start_grpc_server` serves
``inference.GRPCInferenceService`` with grpc.aio on the running event loop."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import grpc
from grpc import aio

from ..repository import ModelRepository
from ..settings import Settings
from . import grpc_service_pb2 as pb

logger = logging.getLogger(__name__)

SERVICE_NAME = "inference.GRPCInferenceService"


class GrpcServer:
    """A started gRPC server: its bound `port` and `stop`."""

    def __init__(self, server: aio.Server, port: int) -> None:
        self._server = server
        self.port = port

    async def stop(self, grace: float) -> None:
        """Refuse new calls at once and let calls in flight finish within
        `grace` seconds, then cancel the rest."""
        await self._server.stop(grace)


class _Servicer:
    def __init__(
        self,
        repository: ModelRepository,
        settings: Settings,
        shutting_down: Callable[[], bool],
    ) -> None:
        self.repository = repository
        self.settings = settings
        self.shutting_down = shutting_down

    async def ServerLive(
        self, request: pb.ServerLiveRequest, context: aio.ServicerContext
    ) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(
        self, request: pb.ServerReadyRequest, context: aio.ServicerContext
    ) -> pb.ServerReadyResponse:
        ready = not self.shutting_down() and self.repository.is_ready()
        return pb.ServerReadyResponse(ready=ready)


def _handlers(servicer: _Servicer) -> dict[str, grpc.RpcMethodHandler]:
    def unary(method: Any, request: Any, response: Any) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(
            method,
            request_deserializer=request.FromString,
            response_serializer=response.SerializeToString,
        )

    return {
        "ServerLive": unary(
            servicer.ServerLive, pb.ServerLiveRequest, pb.ServerLiveResponse
        ),
        "ServerReady": unary(
            servicer.ServerReady, pb.ServerReadyRequest, pb.ServerReadyResponse
        ),
    }


async def start_grpc_server(
    repository: ModelRepository,
    settings: Settings,
    shutting_down: Callable[[], bool],
) -> GrpcServer:
    """Start serving on ``settings.host:settings.grpc_port`` (port 0 picks a
    free one) and return the server with its bound port.

    Raises RuntimeError when the address cannot be bound.
    """
    options = [
        ("grpc.max_receive_message_length", settings.grpc_max_message_length),
        ("grpc.max_send_message_length", settings.grpc_max_message_length),
    ]
    server = aio.server(options=options)
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                SERVICE_NAME, _handlers(_Servicer(repository, settings, shutting_down))
            ),
        )
    )
    host = settings.host
    address = f"[{host}]:{settings.grpc_port}" if ":" in host else f"{host}:{settings.grpc_port}"
    port = server.add_insecure_port(address)
    if port == 0:
        raise RuntimeError(f"The gRPC server could not bind {address}")
    await server.start()
    return GrpcServer(server, port)
