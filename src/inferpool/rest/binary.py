"""Primitives of Triton's binary tensor data extension for HTTP/REST.

A body that uses the extension is a JSON header followed by the raw bytes of
each binary tensor, concatenated in the order of the tensors in the header.
The `Inference-Header-Content-Length` HTTP header gives the length of the
JSON part. Fixed-size elements are little-endian and row-major, BOOL elements
are one byte (0 or 1), and each BYTES element is a 4-byte little-endian
unsigned length followed by that many bytes. See
https://docs.nvidia.com/deeplearning/triton-inference-server/user-guide/docs/protocol/extension_binary_data.html
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

HEADER_LENGTH_HEADER = "Inference-Header-Content-Length"
"""HTTP header that gives the length in bytes of the JSON part of the body."""

BINARY_DATA_SIZE = "binary_data_size"
"""Tensor parameter that gives the size in bytes of a tensor's binary data."""

BINARY_DATA = "binary_data"
"""Requested-output parameter: true requests that output as binary data."""

BINARY_DATA_OUTPUT = "binary_data_output"
"""Request parameter: true requests every output as binary data."""

_LENGTH_PREFIX = struct.Struct("<I")
_MAX_ELEMENT_LENGTH = 0xFFFFFFFF


class BinaryFormatError(ValueError):
    """Binary tensor data that does not follow the extension's format.

    The message describes the problem without naming the tensor, so that
    the caller can add the tensor's name.
    """


def split_body(
    body: bytes | bytearray | memoryview, header_length: int
) -> tuple[memoryview, memoryview]:
    """Split a body into its JSON header and its binary section.

    Both parts are views of `body`, so nothing is copied. Raises
    `BinaryFormatError` when `header_length` is negative or larger than the
    body.
    """
    view = memoryview(body)
    if header_length < 0 or header_length > len(view):
        raise BinaryFormatError(
            f"{HEADER_LENGTH_HEADER} must be between 0 and the body length "
            f"{len(view)}, received {header_length}"
        )
    return view[:header_length], view[header_length:]


def pack_bytes_elements(elements: Iterable[bytes | str]) -> bytes:
    """Pack BYTES elements, each as a 4-byte little-endian length and its bytes.

    `str` elements are encoded as UTF-8. Raises `ValueError` for an element
    longer than 4 GiB - 1, which the 4-byte length cannot describe.
    """
    parts: list[bytes] = []
    pack = _LENGTH_PREFIX.pack
    for element in elements:
        if isinstance(element, str):
            element = element.encode("utf-8")
        if len(element) > _MAX_ELEMENT_LENGTH:
            raise ValueError(
                f"BYTES element of {len(element)} bytes exceeds the maximum "
                f"{_MAX_ELEMENT_LENGTH} of the binary format"
            )
        parts.append(pack(len(element)))
        parts.append(element)
    return b"".join(parts)


def unpack_bytes_elements(data: bytes | memoryview, count: int) -> list[bytes]:
    """Unpack exactly `count` length-prefixed BYTES elements filling `data`.

    Raises `BinaryFormatError` when a length prefix is cut short, when an
    element runs past the end of `data`, or when `data` contains more or
    fewer than `count` elements.
    """
    view = memoryview(data)
    size = len(view)
    elements: list[bytes] = []
    offset = 0
    unpack_from = _LENGTH_PREFIX.unpack_from
    while offset < size:
        if offset + 4 > size:
            raise BinaryFormatError(
                f"BYTES element {len(elements)} has a truncated length prefix: "
                f"{size - offset} of 4 bytes at offset {offset}"
            )
        (length,) = unpack_from(view, offset)
        offset += 4
        if offset + length > size:
            raise BinaryFormatError(
                f"BYTES element {len(elements)} declares {length} bytes but "
                f"only {size - offset} remain"
            )
        elements.append(bytes(view[offset : offset + length]))
        offset += length
        if len(elements) > count:
            break
    if len(elements) != count:
        found = f"more than {count}" if len(elements) > count else len(elements)
        raise BinaryFormatError(
            f"binary BYTES data contains {found} elements, expected {count} "
            "from the shape"
        )
    return elements
