"""Models for benchmarks that run unchanged under inferpool and MLServer 1.7.1.

Both servers expose the same names (``MLModel``, ``InferenceResponse``,
``ResponseOutput``), so only the import differs. The server is chosen in this
order:

1. ``BENCH_MODELS_SERVER`` set to ``inferpool`` or ``mlserver``.
2. The server package that the importing process has already imported. A
   worker imports its server before it imports a model's module, so this
   also works where both packages are installed.
3. ``mlserver`` if it can be imported, else ``inferpool``.
"""

from __future__ import annotations

import importlib
import os
import sys

_SERVERS = ("inferpool", "mlserver")


def _choose_server() -> str:
    requested = os.environ.get("BENCH_MODELS_SERVER")
    if requested is not None:
        if requested not in _SERVERS:
            raise ValueError(
                f"invalid BENCH_MODELS_SERVER {requested!r}: "
                f"set it to one of {', '.join(_SERVERS)} or unset it"
            )
        return requested

    for server in _SERVERS:
        if server in sys.modules:
            return server

    try:
        importlib.import_module("mlserver")
    except ImportError:
        return "inferpool"
    return "mlserver"


SERVER = _choose_server()

if SERVER == "mlserver":
    from mlserver import MLModel
    from mlserver.types import InferenceRequest, InferenceResponse, ResponseOutput
else:
    from inferpool import MLModel
    from inferpool.types import InferenceRequest, InferenceResponse, ResponseOutput


class NoopModel(MLModel):
    """Model that returns its first input unchanged as its only output.

    It does no work of its own, so a benchmark that calls it measures only
    the server: transport, dispatch and (de)serialisation.
    """

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        if not payload.inputs:
            raise ValueError(
                "NoopModel needs an input to echo, but the request has none"
            )

        first = payload.inputs[0]
        output = ResponseOutput(
            name=first.name,
            shape=first.shape,
            datatype=first.datatype,
            data=first.data,
        )
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            outputs=[output],
        )


# Iterations of CpuBoundModel's loop. 40,000 took 1.9 ms (best of 30) in
# CPython 3.11.7 on the 2-core Xeon virtual machine of docs/benchmarks.md.
CPU_BOUND_ITERATIONS = 40_000


def spin(iterations: int) -> int:
    """Run a pure-Python arithmetic loop and return its result."""
    total = 0
    for index in range(iterations):
        total = (total * 31 + index) % 1_000_003
    return total


class CpuBoundModel(MLModel):
    """Model that holds the CPU for about 2 ms of pure-Python work per request.

    It uses no numpy and never sleeps or awaits, so it keeps the GIL of its
    process for the whole loop: only more processes make more requests per
    second. It returns one INT64 output with the loop's result.
    """

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        result = spin(CPU_BOUND_ITERATIONS)
        output = ResponseOutput(name="total", shape=[1], datatype="INT64", data=[result])
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            outputs=[output],
        )
