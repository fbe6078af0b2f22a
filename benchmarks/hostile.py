"""Send generated malformed requests to a running server and check that none
gets a server error, hangs, or kills a worker.

    .venv/bin/python benchmarks/hostile.py [--schema-examples 60] \\
        [--binary-examples 2000] [--grpc-examples 2000] [--seed N] [--json]

The script starts `inferpool start` with 2 worker processes on the `echo`
test model, on free 127.0.0.1 ports. The model (tests/fault_repository/echo)
returns every input unchanged, so a server error can only come from the
server's own decoders and encoders. Three phases run against the server:

1. schemathesis (Python API) generates requests for every operation of the
   OpenAPI document served at /v2/docs/openapi.json, in its positive and
   negative modes, with random model names and with the name pinned to
   `echo` so that inference bodies reach the decoder.
2. hypothesis generates REST bodies of Triton's binary tensor extension: a
   JSON header whose tensors declare `binary_data_size`, a binary tail, and
   an `Inference-Header-Content-Length` value that is right, off by some
   bytes, negative, huge or not a number.
3. hypothesis generates gRPC ModelInferRequest messages with random
   datatypes, int64 shapes, typed contents and raw_input_contents, sent
   through a grpc channel to ModelInfer.

A finding is a REST 5xx (except 503 from a readiness endpoint, which means
"not ready"), a gRPC status other than OK, INVALID_ARGUMENT, NOT_FOUND or
RESOURCE_EXHAUSTED, or a request without a response within --timeout
seconds. After the phases the server must still be live, its worker PIDs
must be unchanged, the restart counter must be 0, and it must stop with exit
status 0. The script exits with status 1 when there is a finding or a check
fails, and prints every distinct finding with its input and the server's
ERROR log lines.

`tests/test_hostile.py` runs the same phases with fewer examples.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import http.client
import json
import math
import re
import shutil
import struct
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import grpc
import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from server_helpers import ServerProcess, child_pids  # noqa: E402

from inferpool.grpc import grpc_service_pb2 as pb  # noqa: E402
from inferpool.grpc import grpc_service_pb2_grpc as pb_grpc  # noqa: E402

MODEL_FOLDER = ROOT / "tests" / "fault_repository" / "echo"
MODEL_NAME = "echo"
HEADER_LENGTH_HEADER = "Inference-Header-Content-Length"
# Maximum number of distinct findings kept per phase.
MAX_FINDINGS = 20
ALLOWED_GRPC_CODES = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}
DATATYPES = [
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
]
ITEM_SIZES = {
    "BOOL": 1,
    "UINT8": 1,
    "UINT16": 2,
    "UINT32": 4,
    "UINT64": 8,
    "INT8": 1,
    "INT16": 2,
    "INT32": 4,
    "INT64": 8,
    "FP16": 2,
    "FP32": 4,
    "FP64": 8,
}
# Typed contents fields of InferTensorContents with a strategy of values
# that the field can hold.
CONTENTS_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "bool_contents": st.booleans(),
    "int_contents": st.integers(-(2**31), 2**31 - 1),
    "int64_contents": st.integers(-(2**63), 2**63 - 1),
    "uint_contents": st.integers(0, 2**32 - 1),
    "uint64_contents": st.integers(0, 2**64 - 1),
    "fp32_contents": st.floats(width=32),
    "fp64_contents": st.floats(),
    "bytes_contents": st.binary(max_size=8),
}


@dataclass
class Finding:
    """A request that got a server error or no response."""

    phase: str
    request: str
    response: str


@dataclass
class PhaseResult:
    name: str
    cases: int = 0
    seconds: float = 0.0
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    findings: list[Finding] = field(default_factory=list)
    finding_count: int = 0
    _seen: set[str] = field(default_factory=set, repr=False)

    def record(
        self, outcome: str, request: str | None = None, response: str | None = None
    ) -> None:
        """Count one case; `request` and `response` are given for a finding."""
        self.cases += 1
        self.outcomes[outcome] += 1
        if request is None:
            return
        self.finding_count += 1
        # Findings with the same outcome and message start are one bug.
        key = f"{outcome} {re.sub(r'[0-9]+', 'N', response or '')[:80]}"
        if key not in self._seen and len(self.findings) < MAX_FINDINGS:
            self._seen.add(key)
            self.findings.append(
                Finding(self.name, request[:2000], (response or "")[:1000])
            )


@dataclass
class HostileReport:
    phases: list[dict[str, Any]]
    cases: int
    findings: int
    worker_pids_before: list[int]
    worker_pids_after: list[int]
    restarts: int
    live_after: bool
    log_errors: dict[str, int]
    log_tracebacks: int
    problems: list[str]


def hypothesis_settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


def run_given(
    strategy: st.SearchStrategy[Any],
    check: Callable[[Any], None],
    max_examples: int,
    seed: int | None,
) -> None:
    """Run `check` on up to `max_examples` values of `strategy`. Checks
    record findings instead of raising, so a run counts every case instead
    of stopping and shrinking at the first failure."""
    test = settings(hypothesis_settings(max_examples))(given(strategy)(check))
    if seed is not None:
        test = hypothesis.seed(seed)(test)
    test()


# ---------------------------------------------------------------------------
# Phase 1: schemathesis on the OpenAPI document


def rest_status_is_finding(path: str, status: int) -> bool:
    if status < 500:
        return False
    return not (status == 503 and path.endswith("/ready"))


def run_schemathesis(
    server: ServerProcess, examples: int, seed: int | None, timeout: float
) -> PhaseResult:
    result = PhaseResult("schemathesis")
    schema = schemathesis.openapi.from_url(f"{server.url}/v2/docs/openapi.json")
    started = time.monotonic()
    for operation_result in schema.get_all_operations():
        operation = operation_result.ok()
        pinned: list[dict[str, str] | None] = [None]
        if operation.path.endswith("/infer"):
            pin = {"name": MODEL_NAME}
            if "{version}" in operation.path:
                pin["version"] = "v1"
            pinned.append(pin)
        for path_parameters in pinned:
            for mode in schemathesis.GenerationMode:
                strategy = operation.as_strategy(
                    generation_mode=mode, path_parameters=path_parameters
                )

                def check(case: Any) -> None:
                    described = (
                        f"{case.method} {case.formatted_path} query={case.query!r} "
                        f"headers={case.headers!r} body={case.body!r}"
                    )
                    try:
                        response = case.call(base_url=server.url, timeout=timeout)
                    except requests.RequestException as error:
                        # schemathesis sends with requests: a timeout or a
                        # closed connection.
                        result.record("no response", described, repr(error))
                        return
                    status = response.status_code
                    if rest_status_is_finding(case.path, status):
                        result.record(str(status), described, response.text)
                    else:
                        result.record(str(status))

                try:
                    run_given(strategy, check, examples, seed)
                except Unsatisfiable:
                    # Negative mode has nothing to break in an operation
                    # without parameters or body.
                    continue
    result.seconds = time.monotonic() - started
    return result


# ---------------------------------------------------------------------------
# Phase 2: REST bodies of the binary tensor extension


def pack_bytes(elements: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(element)) + element for element in elements)


def element_count(shape: list[int]) -> int | None:
    """Return the number of elements of a small or empty shape, or None
    for a shape with a negative or a large extent."""
    if any(dim < 0 for dim in shape):
        return None
    if 0 in shape:
        # Zero elements, however large the other extents are.
        return 0
    if all(dim <= 5 for dim in shape):
        return math.prod(shape)
    return None


shapes = st.lists(
    st.integers(-2, 5)
    | st.just(0)
    | st.sampled_from([2**31, 2**62, 2**63 - 1, 2**63, 2**64]),
    max_size=4,
)


@st.composite
def binary_tensors(draw: st.DrawFn) -> tuple[dict[str, Any], bytes]:
    """Return one input of the JSON header and its binary data."""
    datatype = draw(st.sampled_from(DATATYPES) | st.text(max_size=6))
    shape = draw(shapes)
    count = element_count(shape)
    if datatype == "BYTES" and count is not None:
        elements = draw(st.lists(st.binary(max_size=6), min_size=count, max_size=count))
        data = pack_bytes(elements)
    elif datatype in ITEM_SIZES and count is not None:
        size = count * ITEM_SIZES[datatype]
        data = draw(st.binary(min_size=size, max_size=size))
    else:
        data = draw(st.binary(max_size=32))

    # Half the time the true size; otherwise a wrong one or a value of the
    # wrong type. Then half the time the data is replaced by random bytes.
    size = draw(
        st.just(len(data))
        | st.just(len(data))
        | st.integers(-3, 40)
        | st.sampled_from([2**31, 2**63, 2**64, -(2**63), 1.5, "8", None, True, [4]])
    )
    data = draw(st.just(data) | st.binary(max_size=40))

    tensor: dict[str, Any] = {
        "name": draw(st.sampled_from(["x", "y", "x"]) | st.text(max_size=4)),
        "shape": shape,
        "datatype": datatype,
        "parameters": {"binary_data_size": size},
    }
    if draw(st.integers(0, 9)) == 0:
        tensor["data"] = draw(st.lists(st.integers(-1, 1), max_size=3))
    if draw(st.integers(0, 9)) == 0:
        del tensor[draw(st.sampled_from(["name", "shape", "datatype", "parameters"]))]
    return tensor, data


@st.composite
def binary_requests(draw: st.DrawFn) -> tuple[str, dict[str, str], bytes]:
    """Return the path, the headers and the body of one binary request."""
    tensors = draw(st.lists(binary_tensors(), max_size=3))
    header_object: dict[str, Any] = {"inputs": [tensor for tensor, _ in tensors]}
    if draw(st.booleans()):
        header_object["outputs"] = [
            {
                "name": draw(st.sampled_from(["x", "y", "z"])),
                "parameters": {"binary_data": draw(st.booleans())},
            }
            for _ in range(draw(st.integers(0, 2)))
        ]
    if draw(st.booleans()):
        header_object["parameters"] = {
            "binary_data_output": draw(st.booleans() | st.integers(-1, 2))
        }
    header = json.dumps(header_object).encode()

    mutation = draw(st.sampled_from(["none", "none", "flip", "cut", "splice"]))
    if mutation == "flip" and header:
        index = draw(st.integers(0, len(header) - 1))
        header = (
            header[:index] + bytes([draw(st.integers(0, 255))]) + header[index + 1 :]
        )
    elif mutation == "cut":
        header = header[: draw(st.integers(0, len(header)))]
    elif mutation == "splice":
        index = draw(st.integers(0, len(header)))
        header = (
            header[:index] + draw(st.binary(min_size=1, max_size=6)) + header[index:]
        )

    tail = b"".join(data for _, data in tensors)
    if draw(st.integers(0, 4)) == 0:
        tail += draw(st.binary(min_size=1, max_size=16))
    body = header + tail

    length: str | None = draw(
        st.sampled_from(["exact"] * 4 + ["delta", "absent", "text"])
    )
    if length == "exact":
        length = str(len(header))
    elif length == "delta":
        length = str(
            len(header)
            + draw(
                st.integers(-8, 8) | st.sampled_from([-(2**63), 2**63, 2**64, 10**30])
            )
        )
    elif length == "absent":
        length = None
    else:
        length = draw(
            st.sampled_from(
                ["", " ", "abc", "1e3", "0x10", "+5", "-0", "12 ", "١٢", "1_0", "NaN"]
            )
            | st.from_regex(r"[0-9 +\-.eE]{1,8}", fullmatch=True)
        )
    headers = {
        "Content-Type": draw(
            st.sampled_from(["application/json", "application/octet-stream"])
        )
    }
    if length is not None:
        headers[HEADER_LENGTH_HEADER] = length
    path = draw(
        st.sampled_from(
            [
                f"/v2/models/{MODEL_NAME}/infer",
                f"/v2/models/{MODEL_NAME}/versions/v1/infer",
            ]
        )
    )
    return path, headers, body


class RestConnection:
    """A keep-alive HTTP/1.1 connection that reconnects after an error."""

    def __init__(self, port: int, timeout: float) -> None:
        self.port = port
        self.timeout = timeout
        self.connection: http.client.HTTPConnection | None = None

    def post(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes]:
        if self.connection is None:
            self.connection = http.client.HTTPConnection(
                "127.0.0.1", self.port, timeout=self.timeout
            )
        try:
            # UTF-8 bytes, because http.client would encode str values as
            # Latin-1 and reject the non-ASCII digits that some cases use.
            encoded = {name: value.encode() for name, value in headers.items()}
            self.connection.request("POST", path, body=body, headers=encoded)
            response = self.connection.getresponse()
            return response.status, response.read()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def run_binary(
    server: ServerProcess, examples: int, seed: int | None, timeout: float
) -> PhaseResult:
    result = PhaseResult("REST binary extension")
    connection = RestConnection(server.http_port, timeout)

    def check(request: tuple[str, dict[str, str], bytes]) -> None:
        path, headers, body = request
        described = f"POST {path} headers={headers!r} body={body!r}"
        try:
            status, payload = connection.post(path, headers, body)
        except (OSError, http.client.HTTPException) as error:
            result.record("no response", described, repr(error))
            return
        if rest_status_is_finding(path, status):
            result.record(str(status), described, payload.decode(errors="replace"))
        else:
            result.record(str(status))

    started = time.monotonic()
    try:
        run_given(binary_requests(), check, examples, seed)
    finally:
        connection.close()
    result.seconds = time.monotonic() - started
    return result


# ---------------------------------------------------------------------------
# Phase 3: gRPC ModelInferRequest messages

grpc_shapes = st.lists(
    st.integers(-2, 5)
    | st.just(0)
    | st.integers(-(2**63), 2**63 - 1)
    | st.sampled_from([2**31, 2**62, 2**63 - 1]),
    max_size=4,
)
parameter_values = st.one_of(
    st.builds(pb.InferParameter, bool_param=st.booleans()),
    st.builds(pb.InferParameter, int64_param=st.integers(-(2**63), 2**63 - 1)),
    st.builds(pb.InferParameter, string_param=st.text(max_size=6)),
    st.builds(pb.InferParameter),
)


def maybe_random(
    usual: st.SearchStrategy[Any], other: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """Draw from `usual` 9 times in 10 and from `other` otherwise. A plain
    `usual | other` would draw half of the model names at random, and those
    requests stop at NOT_FOUND before any tensor is decoded."""
    return st.integers(0, 9).flatmap(lambda roll: other if roll == 0 else usual)


@st.composite
def infer_messages(draw: st.DrawFn) -> pb.ModelInferRequest:
    message = pb.ModelInferRequest(
        model_name=draw(maybe_random(st.just(MODEL_NAME), st.text(max_size=6))),
        model_version=draw(
            maybe_random(st.sampled_from(["", "v1"]), st.text(max_size=3))
        ),
        id=draw(st.text(max_size=6)),
    )
    for key, value in draw(
        st.dictionaries(st.text(max_size=4), parameter_values, max_size=2)
    ).items():
        message.parameters[key].CopyFrom(value)

    raw_contents: list[bytes] = []
    use_raw = draw(st.booleans())
    for _ in range(draw(st.integers(0, 3))):
        datatype = draw(st.sampled_from(DATATYPES) | st.text(max_size=6))
        shape = draw(grpc_shapes)
        tensor = message.inputs.add(
            name=draw(st.sampled_from(["x", "y", "x", ""]) | st.text(max_size=4)),
            datatype=datatype,
            shape=shape,
        )
        count = element_count(shape)
        if use_raw:
            if datatype == "BYTES" and count is not None:
                chunk = pack_bytes(
                    draw(
                        st.lists(st.binary(max_size=6), min_size=count, max_size=count)
                    )
                )
            elif datatype in ITEM_SIZES and count is not None:
                size = count * ITEM_SIZES[datatype]
                chunk = draw(st.binary(min_size=size, max_size=size))
            else:
                chunk = b""
            raw_contents.append(draw(st.just(chunk) | st.binary(max_size=40)))
        else:
            for _ in range(draw(st.integers(0, 2))):
                name = draw(st.sampled_from(sorted(CONTENTS_VALUES)))
                size = (
                    count
                    if count is not None and draw(st.booleans())
                    else draw(st.integers(0, 6))
                )
                values = draw(
                    st.lists(CONTENTS_VALUES[name], min_size=size, max_size=size)
                )
                getattr(tensor.contents, name).extend(values)
        if draw(st.integers(0, 4)) == 0:
            tensor.parameters["binary_data_size"].int64_param = draw(
                st.integers(-5, 64)
            )
    # Mostly one raw entry per input; sometimes one too many or too few.
    if raw_contents and draw(st.integers(0, 4)) == 0:
        raw_contents = raw_contents[:-1]
    elif use_raw and draw(st.integers(0, 9)) == 0:
        raw_contents.append(draw(st.binary(max_size=8)))
    message.raw_input_contents.extend(raw_contents)
    for _ in range(draw(st.integers(0, 2))):
        message.outputs.add(name=draw(st.sampled_from(["x", "y", "z", ""])))
    return message


def run_grpc(
    server: ServerProcess, examples: int, seed: int | None, timeout: float
) -> PhaseResult:
    result = PhaseResult("gRPC ModelInfer")
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)

        def check(message: pb.ModelInferRequest) -> None:
            described = f"ModelInferRequest {{{str(message).strip()}}} (serialized {message.SerializeToString()!r})"
            try:
                stub.ModelInfer(message, timeout=timeout)
            except grpc.RpcError as error:
                code = error.code()
                if code in ALLOWED_GRPC_CODES:
                    result.record(code.name)
                else:
                    result.record(
                        code.name, described, f"{code.name}: {error.details()}"
                    )
                return
            result.record("OK")

        started = time.monotonic()
        run_given(infer_messages(), check, examples, seed)
        result.seconds = time.monotonic() - started
    return result


# ---------------------------------------------------------------------------
# The run


def scrape_restarts(metrics_port: int) -> int:
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    match = re.search(
        r"^inferpool_worker_restarts_total ([0-9.e+]+)$", text, re.MULTILINE
    )
    if match is None:
        raise ValueError(
            "metric inferpool_worker_restarts_total not found on the metrics page"
        )
    return int(float(match.group(1)))


LOG_RECORD_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")
QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def summarize_log_errors(log: str) -> tuple[dict[str, int], int]:
    """Group the ERROR records of a server log by message, with quoted
    values blanked and the last line of each traceback appended.

    Returns the groups with their counts, and the number of records that
    contain a traceback."""
    records: list[list[str]] = []
    for line in log.splitlines():
        if LOG_RECORD_START.match(line):
            records.append([line])
        elif records:
            records[-1].append(line)
    groups: collections.Counter[str] = collections.Counter()
    tracebacks = 0
    for record in records:
        if " ERROR " not in record[0]:
            continue
        message = LOG_RECORD_START.sub("", record[0])
        if any(line.startswith("Traceback") for line in record[1:]):
            tracebacks += 1
            message += " ... " + record[-1].strip()
        groups[QUOTED.sub("'...'", message)[:300]] += 1
    return dict(groups.most_common()), tracebacks


@contextlib.contextmanager
def echo_server(workers: int = 2) -> Iterator[ServerProcess]:
    """Serve a copy of the echo test model from a temporary folder; on exit,
    stop the server and check that no worker outlives it."""
    with tempfile.TemporaryDirectory(prefix="inferpool-hostile-") as scratch:
        folder = Path(scratch) / "models"
        shutil.copytree(
            MODEL_FOLDER,
            folder / MODEL_FOLDER.name,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        server = ServerProcess(folder, "--parallel-workers", str(workers))
        server.start()
        try:
            yield server
        finally:
            server.stop()


def run_hostile(
    server: ServerProcess,
    schema_examples: int = 60,
    binary_examples: int = 2000,
    grpc_examples: int = 2000,
    seed: int | None = None,
    timeout: float = 30.0,
) -> HostileReport:
    """Run the three phases against a running server and check it after."""
    assert server.process is not None
    pids_before = sorted(child_pids(server.process.pid))
    # The gRPC and binary phases go first, because schemathesis may unload
    # the model if it happens to generate its name.
    results = [
        run_grpc(server, grpc_examples, seed, timeout),
        run_binary(server, binary_examples, seed, timeout),
        run_schemathesis(server, schema_examples, seed, timeout),
    ]
    live = server.request("GET", "/v2/health/live")[0] == 200
    pids_after = sorted(child_pids(server.process.pid))
    restarts = scrape_restarts(server.metrics_port)
    log_errors, tracebacks = summarize_log_errors(server.log())

    problems: list[str] = []
    for result in results:
        if result.finding_count:
            problems.append(f"{result.name}: {result.finding_count} findings")
    if tracebacks:
        problems.append(
            f"the server logged {tracebacks} tracebacks for client requests"
        )
    if not live:
        problems.append("/v2/health/live did not return 200 after the run")
    if pids_after != pids_before:
        problems.append(f"worker PIDs changed from {pids_before} to {pids_after}")
    if restarts:
        problems.append(f"{restarts} workers were restarted")
    return HostileReport(
        phases=[
            {
                "name": result.name,
                "cases": result.cases,
                "seconds": round(result.seconds, 1),
                "outcomes": dict(result.outcomes.most_common()),
                "finding_count": result.finding_count,
                "findings": [asdict(finding) for finding in result.findings],
            }
            for result in results
        ],
        cases=sum(result.cases for result in results),
        findings=sum(result.finding_count for result in results),
        worker_pids_before=pids_before,
        worker_pids_after=pids_after,
        restarts=restarts,
        live_after=live,
        log_errors=log_errors,
        log_tracebacks=tracebacks,
        problems=problems,
    )


def format_report(report: HostileReport) -> str:
    lines = []
    for phase in report.phases:
        lines.append(
            f"{phase['name']}: {phase['cases']} cases in {phase['seconds']:g}s, "
            f"{phase['finding_count']} findings; "
            f"outcomes {phase['outcomes']}"
        )
        for finding in phase["findings"]:
            lines.append(f"  request:  {finding['request']}")
            lines.append(f"  response: {finding['response']}")
    lines.append(
        f"total {report.cases} cases, {report.findings} findings; live after: {report.live_after}; "
        f"worker PIDs {report.worker_pids_before} -> {report.worker_pids_after}; "
        f"restarts {report.restarts}"
    )
    if report.log_errors:
        lines.append(
            f"server ERROR log records ({report.log_tracebacks} with a traceback), grouped:"
        )
        lines.extend(
            f"  {count:6d} x {message}" for message, count in report.log_errors.items()
        )
    if report.problems:
        lines.append("FAILED:")
        lines.extend(f"  - {problem}" for problem in report.problems)
    else:
        lines.append("all criteria met")
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--schema-examples",
        type=int,
        default=60,
        help="schemathesis examples per operation, mode and model name (default: 60)",
    )
    parser.add_argument(
        "--binary-examples",
        type=int,
        default=2000,
        help="binary-extension REST requests (default: 2000)",
    )
    parser.add_argument(
        "--grpc-examples",
        type=int,
        default=2000,
        help="gRPC ModelInfer requests (default: 2000)",
    )
    parser.add_argument("--seed", type=int, help="hypothesis seed (default: random)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds a request may take before it counts as unanswered (default: 30)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    with echo_server() as server:
        report = run_hostile(
            server,
            schema_examples=args.schema_examples,
            binary_examples=args.binary_examples,
            grpc_examples=args.grpc_examples,
            seed=args.seed,
            timeout=args.timeout,
        )
    assert server.process is not None
    if server.process.returncode != 0:
        report.problems.append(f"server exited with {server.process.returncode}")
    print(json.dumps(asdict(report), indent=2) if args.json else format_report(report))
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
