"""Conversion between the V2 gRPC messages and inferpool's protocol types.

`request_from_proto` turns a `ModelInferRequest` into an `InferenceRequest`
whose inputs contain numpy arrays of the input's dtype and shape, exactly as
REST decoding produces, and rejects a malformed request with an
`InvalidRequest` that names the input and the problem.
`response_to_proto` does the reverse for responses. `request_to_proto` and
`response_from_proto` serve clients and tests.

Tensor data travels in one of two forms. Typed contents put the elements in
the `InferTensorContents` field of the datatype's kind (`fp32_contents` for
FP32, `int_contents` for INT8, INT16 and INT32, and so on). FP16 has no such
field, so it travels only as raw contents. Raw contents
(`raw_input_contents`, `raw_output_contents`) hold one bytes entry per tensor,
in tensor order: the elements little-endian and row-major, BOOL as one byte
each, BYTES as a 4-byte little-endian length before each element. A message
uses raw contents for all of its tensors or for none.

`peek_model` reads the model name and version out of a serialised request
without parsing the rest, for the front end's fast path.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

import msgspec
import numpy as np

from ..codecs.rest import check_shape, requested_outputs
from ..errors import InferpoolError, InvalidRequest
from ..rest import binary
from ..rest.binary import BINARY_DATA, BINARY_DATA_SIZE, BinaryFormatError
from ..types import (
    Datatype,
    InferenceRequest,
    InferenceResponse,
    Parameters,
    RequestInput,
    RequestOutput,
    ResponseOutput,
)
from . import grpc_service_pb2 as pb

__all__ = [
    "CONTENTS_FIELDS",
    "parameters_from_proto",
    "parameters_to_proto",
    "peek_model",
    "request_from_proto",
    "request_to_proto",
    "response_from_proto",
    "response_to_proto",
]

# The `InferTensorContents` field that carries each datatype's elements as
# typed contents. FP16 has none, so it travels only as raw contents.
CONTENTS_FIELDS: dict[Datatype, str] = {
    Datatype.BOOL: "bool_contents",
    Datatype.INT8: "int_contents",
    Datatype.INT16: "int_contents",
    Datatype.INT32: "int_contents",
    Datatype.INT64: "int64_contents",
    Datatype.UINT8: "uint_contents",
    Datatype.UINT16: "uint_contents",
    Datatype.UINT32: "uint_contents",
    Datatype.UINT64: "uint64_contents",
    Datatype.FP32: "fp32_contents",
    Datatype.FP64: "fp64_contents",
    Datatype.BYTES: "bytes_contents",
}
_ALL_CONTENTS_FIELDS = sorted(set(CONTENTS_FIELDS.values()))

_DATATYPES: dict[str, Datatype] = {member.value: member for member in Datatype}

# Numpy dtypes in the byte order of raw contents (little-endian).
_WIRE_DTYPES: dict[Datatype, np.dtype[Any]] = {
    datatype: datatype.to_numpy().newbyteorder("<")
    for datatype in Datatype
    if datatype is not Datatype.BYTES
}

# Datatypes narrower than the 32-bit field that carries them as typed
# contents, so their values need a range check.
_NARROW_INTEGERS = {
    Datatype.INT8,
    Datatype.INT16,
    Datatype.UINT8,
    Datatype.UINT16,
}

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_UINT64_MAX = 2**64 - 1

_json_encoder = msgspec.json.Encoder()


# ---------------------------------------------------------------------------
# The front end's fast path


def peek_model(body: bytes | bytearray | memoryview) -> tuple[str, str | None]:
    """Return the `model_name` and `model_version` (None when empty) of a
    serialised `ModelInferRequest`, skipping every other field unread.

    This walks the top-level fields only, so its cost does not grow with the
    size of the tensors. Parsing the bytes into a protobuf message, even one
    that declares only these two fields, copies every unknown field (about
    0.3 ms for a 4 MB tensor, against about 1 us here). The last occurrence
    of a field wins, as in protobuf parsing.

    Raises `InvalidRequest` when the bytes are not a well-formed protobuf
    message or a name is not valid UTF-8.
    """
    view = memoryview(body)
    size = len(view)
    name = b""
    version = b""
    position = 0
    try:
        while position < size:
            tag, position = _read_varint(view, position)
            wire_type = tag & 7
            if wire_type == 2:
                length, position = _read_varint(view, position)
                end = position + length
                if end > size:
                    raise InvalidRequest(
                        f"Malformed ModelInferRequest: field {tag >> 3} declares "
                        f"{length} bytes but only {size - position} remain"
                    )
                field_number = tag >> 3
                if field_number == 1:
                    name = bytes(view[position:end])
                elif field_number == 2:
                    version = bytes(view[position:end])
                position = end
            elif wire_type == 0:
                _, position = _read_varint(view, position)
            elif wire_type == 1:
                position += 8
            elif wire_type == 5:
                position += 4
            else:
                raise InvalidRequest(
                    f"Malformed ModelInferRequest: field {tag >> 3} has wire type "
                    f"{wire_type}, expected 0, 1, 2 or 5"
                )
    except IndexError:
        raise InvalidRequest(
            f"Malformed ModelInferRequest: the {size}-byte message ends inside "
            "a field tag or length"
        ) from None
    if position > size:
        raise InvalidRequest(
            f"Malformed ModelInferRequest: the last field runs past the end "
            f"of the {size}-byte message"
        )
    try:
        return name.decode("utf-8"), version.decode("utf-8") or None
    except UnicodeDecodeError as error:
        raise InvalidRequest(
            f"Invalid ModelInferRequest: model_name or model_version is not "
            f"valid UTF-8 ({error.reason} at byte {error.start})"
        ) from None


def _read_varint(view: memoryview, position: int) -> tuple[int, int]:
    """Decode the base-128 varint at `position`; return it and the position
    after it. Raises IndexError when the message ends inside it."""
    byte = view[position]
    if byte < 0x80:
        return byte, position + 1
    result = byte & 0x7F
    shift = 7
    while True:
        position += 1
        byte = view[position]
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, position + 1
        shift += 7
        if shift > 63:
            raise InvalidRequest(
                "Malformed ModelInferRequest: varint longer than 10 bytes"
            )


# ---------------------------------------------------------------------------
# Parameters


def parameters_from_proto(
    parameters: Mapping[str, pb.InferParameter],
) -> Parameters | None:
    """Convert a map of `InferParameter` to `Parameters`, or None when the
    map is empty. A parameter with no value set becomes None."""
    if not parameters:
        return None
    converted = Parameters()
    for key, parameter in parameters.items():
        choice = parameter.WhichOneof("parameter_choice")
        converted[key] = None if choice is None else getattr(parameter, choice)
    return converted


def parameters_to_proto(
    parameters: Mapping[str, Any] | None,
    target: MutableMapping[str, pb.InferParameter],
    skip: Iterable[str] = (),
) -> None:
    """Write `parameters` into a protobuf map of `InferParameter`.

    bool becomes `bool_param`, an int `int64_param` (`uint64_param` above
    2**63 - 1), a float `double_param` and a str `string_param`. numpy
    scalars count as their Python type. InferParameter has no form for other
    values, so None is left out and lists or dicts are sent as their JSON
    text in `string_param`. Keys in `skip` are left out.

    Raises `InferpoolError` for an int outside the int64 and uint64 ranges,
    or for a value that has no JSON form either.
    """
    if not parameters:
        return
    skipped = set(skip)
    for key, value in parameters.items():
        if key in skipped or value is None:
            continue
        if isinstance(value, np.generic):
            value = value.item()
        parameter = target[key]
        if isinstance(value, bool):
            parameter.bool_param = value
        elif isinstance(value, int):
            if _INT64_MIN <= value <= _INT64_MAX:
                parameter.int64_param = value
            elif _INT64_MAX < value <= _UINT64_MAX:
                parameter.uint64_param = value
            else:
                raise InferpoolError(
                    f"Parameter {key!r}: integer {value} is outside the int64 "
                    "and uint64 ranges of InferParameter"
                )
        elif isinstance(value, float):
            parameter.double_param = value
        elif isinstance(value, str):
            parameter.string_param = value
        elif isinstance(value, bytes):
            parameter.string_param = value.decode("utf-8", "replace")
        else:
            try:
                parameter.string_param = _json_encoder.encode(value).decode()
            except (TypeError, msgspec.EncodeError) as error:
                raise InferpoolError(
                    f"Parameter {key!r}: a value of type {type(value).__name__} "
                    f"has no InferParameter or JSON form ({error})"
                ) from None


# ---------------------------------------------------------------------------
# Decoding tensors


def request_from_proto(message: pb.ModelInferRequest) -> InferenceRequest:
    """Convert a `ModelInferRequest` into an `InferenceRequest`.

    Each input's `data` becomes a writable numpy array of the input's dtype
    and shape (BYTES: an object array of `bytes`), and its `datatype` a
    `Datatype` member. An empty `id` becomes None. Requested outputs become
    `RequestOutput` entries.

    Raises `InvalidRequest`, naming the input, for a duplicate or empty
    name, an unknown datatype, a negative dimension, typed contents of the
    wrong kind or count, values out of the datatype's range, raw contents
    whose length disagrees with the shape, a raw_input_contents count that
    differs from the number of inputs, raw contents mixed with typed
    contents, and a duplicate requested output.
    """
    raw_contents = message.raw_input_contents
    uses_raw = len(raw_contents) > 0
    if uses_raw and len(raw_contents) != len(message.inputs):
        raise InvalidRequest(
            f"raw_input_contents has {len(raw_contents)} entries but the request "
            f"has {len(message.inputs)} inputs, expected one entry per input"
        )

    inputs: list[RequestInput] = []
    seen: dict[str, int] = {}
    for index, tensor in enumerate(message.inputs):
        label = _tensor_label("Input", tensor.name, index, seen)
        datatype, shape = _check_header(label, tensor.datatype, tensor.shape)
        typed_field = _typed_field_in_use(tensor)
        if uses_raw:
            if typed_field is not None:
                raise InvalidRequest(
                    f"{label}: has {typed_field} but the request uses "
                    "raw_input_contents, expected raw contents for every input "
                    "or for none"
                )
            array = _array_from_raw(
                label,
                datatype,
                shape,
                raw_contents[index],
                f"raw_input_contents[{index}]",
            )
        else:
            array = _array_from_contents(label, datatype, shape, tensor.contents)
        inputs.append(
            RequestInput(
                name=tensor.name,
                shape=shape,
                datatype=datatype,
                data=array,
                parameters=parameters_from_proto(tensor.parameters),
            )
        )

    outputs: list[RequestOutput] | None = None
    if len(message.outputs):
        outputs = requested_outputs(
            (o.name, parameters_from_proto(o.parameters)) for o in message.outputs
        )

    return InferenceRequest(
        id=message.id or None,
        parameters=parameters_from_proto(message.parameters),
        inputs=inputs,
        outputs=outputs,
    )


def response_from_proto(message: pb.ModelInferResponse) -> InferenceResponse:
    """Convert a `ModelInferResponse` into an `InferenceResponse`, as a client
    does. Empty `model_version` and `id` become None.

    Outputs are checked and converted like the inputs of
    `request_from_proto`, and the same problems raise `InvalidRequest`.
    """
    raw_contents = message.raw_output_contents
    uses_raw = len(raw_contents) > 0
    if uses_raw and len(raw_contents) != len(message.outputs):
        raise InvalidRequest(
            f"raw_output_contents has {len(raw_contents)} entries but the response "
            f"has {len(message.outputs)} outputs, expected one entry per output"
        )
    outputs: list[ResponseOutput] = []
    seen: dict[str, int] = {}
    for index, tensor in enumerate(message.outputs):
        label = _tensor_label("Output", tensor.name, index, seen)
        datatype, shape = _check_header(label, tensor.datatype, tensor.shape)
        if uses_raw:
            array = _array_from_raw(
                label,
                datatype,
                shape,
                raw_contents[index],
                f"raw_output_contents[{index}]",
            )
        else:
            array = _array_from_contents(label, datatype, shape, tensor.contents)
        outputs.append(
            ResponseOutput(
                name=tensor.name,
                shape=shape,
                datatype=datatype,
                data=array,
                parameters=parameters_from_proto(tensor.parameters),
            )
        )
    return InferenceResponse(
        model_name=message.model_name,
        model_version=message.model_version or None,
        id=message.id or None,
        parameters=parameters_from_proto(message.parameters),
        outputs=outputs,
    )


def _tensor_label(kind: str, name: str, index: int, seen: dict[str, int]) -> str:
    """Return how messages name the tensor, after checking that its name is
    set and unique."""
    plural = f"{kind.lower()}s"
    if not name:
        raise InvalidRequest(f"{kind} {plural}[{index}]: missing name")
    first = seen.setdefault(name, index)
    if first != index:
        raise InvalidRequest(
            f"Duplicate {kind.lower()} name {name!r} in {plural}[{first}] and "
            f"{plural}[{index}]"
        )
    return f"{kind} {name!r}"


def _check_header(
    label: str, datatype_name: str, dims: Iterable[int]
) -> tuple[Datatype, list[int]]:
    datatype = _DATATYPES.get(datatype_name)
    if datatype is None:
        raise InvalidRequest(
            f"{label}: unknown datatype {datatype_name!r}, expected one of "
            + ", ".join(_DATATYPES)
        )
    shape = list(dims)
    for dim, extent in enumerate(shape):
        if extent < 0:
            raise InvalidRequest(
                f"{label}: shape {shape} has a negative extent {extent} in "
                f"dimension {dim}, expected sizes of 0 or more"
            )
    check_shape(label, shape, datatype)
    return datatype, shape


def _typed_field_in_use(tensor: Any) -> str | None:
    """Return the first typed contents field with elements, or None."""
    if not tensor.HasField("contents"):
        return None
    contents = tensor.contents
    for field in _ALL_CONTENTS_FIELDS:
        if len(getattr(contents, field)):
            return field
    return None


def _array_from_raw(
    label: str,
    datatype: Datatype,
    shape: list[int],
    chunk: bytes,
    where: str,
) -> np.ndarray[Any, Any]:
    """Copy a tensor out of its raw contents, checking their length."""
    count = math.prod(shape)
    if datatype is Datatype.BYTES:
        try:
            elements = binary.unpack_bytes_elements(chunk, count)
        except BinaryFormatError as error:
            raise InvalidRequest(f"{label}: {where}: {error}") from None
        array = np.empty(count, dtype=object)
        array[:] = elements
        return array.reshape(shape)

    dtype = _WIRE_DTYPES[datatype]
    expected = count * dtype.itemsize
    if len(chunk) != expected:
        raise InvalidRequest(
            f"{label}: {where} has {len(chunk)} bytes but shape {shape} of "
            f"{datatype.value} needs {expected} bytes"
        )
    if datatype is Datatype.BOOL:
        raw_bytes = np.frombuffer(chunk, dtype=np.uint8)
        if raw_bytes.size and raw_bytes.max() > 1:
            bad = int(np.argmax(raw_bytes > 1))
            raise InvalidRequest(
                f"{label}: {where}: BOOL element {bad} must be 0 or 1, "
                f"received {int(raw_bytes[bad])}"
            )
    # astype copies, so the array is writable and aligned like a REST input.
    return (
        np.frombuffer(chunk, dtype=dtype).astype(dtype.newbyteorder("=")).reshape(shape)
    )


def _array_from_contents(
    label: str, datatype: Datatype, shape: list[int], contents: Any
) -> np.ndarray[Any, Any]:
    """Build a tensor from its typed contents, checking the field and the
    element count."""
    count = math.prod(shape)
    expected_field = CONTENTS_FIELDS.get(datatype)
    for field in _ALL_CONTENTS_FIELDS:
        if field != expected_field and len(getattr(contents, field)):
            if expected_field is None:
                raise InvalidRequest(
                    f"{label}: {datatype.value} data must be sent as raw contents, "
                    f"received {field}"
                )
            raise InvalidRequest(
                f"{label}: datatype {datatype.value} takes {expected_field}, "
                f"received {field}"
            )
    if expected_field is None:
        if count:
            raise InvalidRequest(
                f"{label}: {datatype.value} data must be sent as raw contents, "
                f"received no raw contents for shape {shape}"
            )
        return np.empty(shape, dtype=datatype.to_numpy())

    values = getattr(contents, expected_field)
    if len(values) != count:
        raise InvalidRequest(
            f"{label}: shape {shape} needs {count} elements but "
            f"contents.{expected_field} has {len(values)}"
        )
    if datatype is Datatype.BYTES:
        array = np.empty(count, dtype=object)
        array[:] = list(values)
        return array.reshape(shape)

    dtype = datatype.to_numpy()
    if datatype in _NARROW_INTEGERS:
        wide = np.array(values, dtype=np.int64)
        info = np.iinfo(dtype)
        outside = (wide < info.min) | (wide > info.max)
        if outside.any():
            bad = int(np.argmax(outside))
            raise InvalidRequest(
                f"{label}: contents.{expected_field}[{bad}] is out of range for "
                f"{datatype.value}, expected {info.min} to {info.max}, "
                f"received {int(wide[bad])}"
            )
        return wide.astype(dtype).reshape(shape)
    return np.array(values, dtype=dtype).reshape(shape)


# ---------------------------------------------------------------------------
# Encoding tensors


def response_to_proto(
    response: InferenceResponse, raw_outputs: bool
) -> pb.ModelInferResponse:
    """Convert an `InferenceResponse` into a `ModelInferResponse`.

    With `raw_outputs`, every output goes into `raw_output_contents`;
    otherwise each goes into the typed contents field of its datatype. FP16
    has no typed field, so a response with an FP16 output uses raw contents
    for all outputs. The REST markers `binary_data` and `binary_data_size`
    are dropped from output parameters, because they describe REST's
    encoding only.

    Raises `InferpoolError` (INTERNAL) for an output with an unknown
    datatype, data that disagrees with its shape or cannot be converted to
    its datatype, or a parameter that InferParameter cannot carry.
    """
    message = pb.ModelInferResponse(
        model_name=response.model_name,
        model_version=response.model_version or "",
        id=response.id or "",
    )
    parameters_to_proto(response.parameters, message.parameters)
    prepared = [_prepare_tensor("Output", tensor) for tensor in response.outputs]
    raw_outputs = raw_outputs or any(d is Datatype.FP16 for _, d, _ in prepared)
    for tensor, (label, datatype, array) in zip(response.outputs, prepared):
        output = message.outputs.add(
            name=tensor.name, datatype=datatype.value, shape=list(tensor.shape)
        )
        parameters_to_proto(
            tensor.parameters, output.parameters, skip=(BINARY_DATA, BINARY_DATA_SIZE)
        )
        if raw_outputs:
            message.raw_output_contents.append(_array_to_raw(label, datatype, array))
        else:
            _array_to_contents(label, datatype, array, output.contents)
    return message


def request_to_proto(
    request: InferenceRequest,
    model_name: str,
    model_version: str | None = None,
    raw_inputs: bool = True,
) -> pb.ModelInferRequest:
    """Convert an `InferenceRequest` into a `ModelInferRequest` for a model,
    as a client does, with raw contents unless `raw_inputs` is false (FP16
    inputs then still force raw contents for all inputs).

    Raises `InferpoolError` for an input whose data disagrees with its shape
    or datatype.
    """
    message = pb.ModelInferRequest(
        model_name=model_name, model_version=model_version or "", id=request.id or ""
    )
    parameters_to_proto(request.parameters, message.parameters)
    prepared = [_prepare_tensor("Input", tensor) for tensor in request.inputs]
    raw_inputs = raw_inputs or any(d is Datatype.FP16 for _, d, _ in prepared)
    for tensor, (label, datatype, array) in zip(request.inputs, prepared):
        entry = message.inputs.add(
            name=tensor.name, datatype=datatype.value, shape=list(tensor.shape)
        )
        parameters_to_proto(tensor.parameters, entry.parameters)
        if raw_inputs:
            message.raw_input_contents.append(_array_to_raw(label, datatype, array))
        else:
            _array_to_contents(label, datatype, array, entry.contents)
    for output in request.outputs or ():
        requested = message.outputs.add(name=output.name)
        parameters_to_proto(output.parameters, requested.parameters)
    return message


def _prepare_tensor(
    kind: str, tensor: Any
) -> tuple[str, Datatype, np.ndarray[Any, Any]]:
    """Return the tensor's label, datatype and data as a flat array of the
    wire dtype (object for BYTES), checked against its shape."""
    label = f"{kind} {tensor.name!r}"
    datatype = _DATATYPES.get(str(tensor.datatype))
    if datatype is None:
        raise InferpoolError(
            f"{label}: unknown datatype {tensor.datatype!r}, expected one of "
            + ", ".join(_DATATYPES)
        )
    count = math.prod(tensor.shape)
    try:
        if datatype is Datatype.BYTES:
            array = np.asarray(tensor.data, dtype=object).reshape(-1)
        else:
            array = np.ascontiguousarray(tensor.data, dtype=_WIRE_DTYPES[datatype])
            array = array.reshape(-1)
    except (TypeError, ValueError, OverflowError) as error:
        raise InferpoolError(
            f"{label}: cannot convert data to {datatype.value}: {error}"
        ) from None
    if array.size != count:
        raise InferpoolError(
            f"{label}: data has {array.size} elements but shape "
            f"{list(tensor.shape)} needs {count}"
        )
    return label, datatype, array


def _bytes_elements(label: str, array: np.ndarray[Any, Any]) -> list[bytes]:
    elements: list[bytes] = []
    for item in array.tolist():
        if isinstance(item, bytes):
            elements.append(item)
        elif isinstance(item, str):
            elements.append(item.encode("utf-8"))
        else:
            raise InferpoolError(
                f"{label}: BYTES element of type {type(item).__name__} is not "
                "bytes or str"
            )
    return elements


def _array_to_raw(label: str, datatype: Datatype, array: np.ndarray[Any, Any]) -> bytes:
    if datatype is Datatype.BYTES:
        try:
            return binary.pack_bytes_elements(_bytes_elements(label, array))
        except ValueError as error:
            raise InferpoolError(f"{label}: cannot pack BYTES data: {error}") from None
    return array.tobytes()


def _array_to_contents(
    label: str, datatype: Datatype, array: np.ndarray[Any, Any], contents: Any
) -> None:
    field = getattr(contents, CONTENTS_FIELDS[datatype])
    if datatype is Datatype.BYTES:
        field.extend(_bytes_elements(label, array))
    else:
        field.extend(array.tolist())
