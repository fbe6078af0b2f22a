"""The pandas codec (content type "pd"): a whole request as a DataFrame, one
column per tensor.

pandas is an optional extra (`pip install inferpool[pandas]`). It is
imported on first use, so importing this module, and registering the codec,
works without it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from inferpool.codecs.base import (
    RequestCodec,
    find_input_codec,
    register_request_codec,
    registered_content_types,
)
from inferpool.codecs.numpy import NumpyCodec, to_datatype
from inferpool.codecs.string import StringCodec
from inferpool.errors import InvalidRequest
from inferpool.types import (
    Datatype,
    InferenceRequest,
    InferenceResponse,
    Parameters,
    RequestInput,
    ResponseOutput,
)

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]

__all__ = ["PandasCodec"]


def _import_pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise ImportError(
            "The pandas codec (content type 'pd') needs pandas: "
            "install it with `pip install inferpool[pandas]`"
        ) from None
    return pandas


def _decode_column(tensor: RequestInput | ResponseOutput) -> Any:
    """Decode one tensor into column values with its own content type, or
    as a numpy array when it has none."""
    content_type = None if tensor.parameters is None else tensor.parameters.content_type
    codec: Any = NumpyCodec
    if content_type is not None:
        codec = find_input_codec(content_type)
        if codec is None:
            input_types, _ = registered_content_types()
            raise InvalidRequest(
                f"Tensor {tensor.name!r}: unknown content type {content_type!r}, "
                f"expected one of {', '.join(input_types)}"
            )
    if isinstance(tensor, RequestInput):
        values = codec.decode_input(tensor)
    else:
        values = codec.decode_output(tensor)
    if isinstance(values, np.ndarray):
        if values.ndim == 2 and values.shape[1] == 1:
            return values.reshape(-1)
        if values.ndim > 1:
            # A column of row arrays, one per row of the tensor.
            return list(values)
    return values


def _decode_frame(tensors: list[RequestInput] | list[ResponseOutput]) -> pd.DataFrame:
    pandas = _import_pandas()
    columns: dict[str, Any] = {}
    for tensor in tensors:
        columns[tensor.name] = _decode_column(tensor)
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise InvalidRequest(
            f"Content type 'pd' needs tensors of equal length, received lengths {lengths}"
        )
    return pandas.DataFrame(columns)


def _encode_column(
    name: str, series: pd.Series
) -> tuple[list[int], Datatype, Any, Parameters | None]:
    """Return shape, datatype, data and parameters of a column's tensor."""
    pandas = _import_pandas()
    length = len(series)
    if pandas.api.types.is_string_dtype(series.dtype):
        values = series.tolist()
        if all(isinstance(value, str) for value in values):
            output = StringCodec.encode_output(name, values)
            return output.shape, Datatype.BYTES, output.data, output.parameters
        if all(isinstance(value, bytes) for value in values):
            data = np.empty(length, dtype=object)
            data[:] = values
            return [length, 1], Datatype.BYTES, data.reshape(length, 1), None
    array = series.to_numpy()
    try:
        datatype = to_datatype(array.dtype)
    except ValueError as error:
        raise ValueError(f"Column {name!r} cannot be encoded: {error}") from None
    if datatype is Datatype.BYTES:
        raise ValueError(
            f"Column {name!r} mixes types or contains values other than str and "
            "bytes, so it cannot be encoded as BYTES"
        )
    return [length, 1], datatype, array.reshape(length, 1), None


@register_request_codec
class PandasCodec(RequestCodec):
    """Codec between a request or response and a pandas DataFrame.

    Each tensor is a column. On decoding, a tensor with its own
    `content_type` parameter is decoded with that codec (for example "str"
    for text columns), any other with the numpy codec, and `[N, 1]` tensors
    become plain columns of length N. On encoding, each column becomes a
    tensor of shape `[N, 1]`, with text columns as BYTES with content type
    "str". Raises `ImportError` when pandas is not installed.
    """

    ContentType = "pd"
    TypeHint = "pandas.DataFrame"

    @classmethod
    def can_encode(cls, payload: Any) -> bool:
        """Return True for a DataFrame. Does not import pandas: a payload
        cannot be a DataFrame unless pandas is already imported."""
        pandas = sys.modules.get("pandas")
        return pandas is not None and isinstance(payload, pandas.DataFrame)

    @classmethod
    def encode_response(
        cls,
        model_name: str,
        payload: pd.DataFrame,
        model_version: str | None = None,
        **kwargs: Any,
    ) -> InferenceResponse:
        """Encode each column of `payload` as an output named after it."""
        outputs = []
        for column in payload.columns:
            shape, datatype, data, parameters = _encode_column(
                str(column), payload[column]
            )
            outputs.append(
                ResponseOutput(
                    name=str(column),
                    shape=shape,
                    datatype=datatype,
                    data=data,
                    parameters=parameters,
                )
            )
        return InferenceResponse(
            model_name=model_name,
            model_version=model_version,
            parameters=Parameters(content_type=cls.ContentType),
            outputs=outputs,
        )

    @classmethod
    def decode_response(cls, response: InferenceResponse) -> pd.DataFrame:
        """Decode the outputs of `response` into a DataFrame.

        Raises `InvalidRequest` when outputs differ in length or one has an
        unknown content type.
        """
        return _decode_frame(response.outputs)

    @classmethod
    def encode_request(cls, payload: pd.DataFrame, **kwargs: Any) -> InferenceRequest:
        """Encode each column of `payload` as an input named after it."""
        inputs = []
        for column in payload.columns:
            shape, datatype, data, parameters = _encode_column(
                str(column), payload[column]
            )
            inputs.append(
                RequestInput(
                    name=str(column),
                    shape=shape,
                    datatype=datatype,
                    data=data,
                    parameters=parameters,
                )
            )
        return InferenceRequest(
            parameters=Parameters(content_type=cls.ContentType),
            inputs=inputs,
        )

    @classmethod
    def decode_request(cls, request: InferenceRequest) -> pd.DataFrame:
        """Decode the inputs of `request` into a DataFrame.

        Raises `InvalidRequest` when inputs differ in length or one has an
        unknown content type.
        """
        return _decode_frame(request.inputs)
