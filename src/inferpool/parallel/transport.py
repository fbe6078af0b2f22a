"""Framed, pickled messages over one socket per worker.

Design notes
------------
Each worker has one duplex stream socket (a `socketpair`) to the front end.
Both ends read it with an `asyncio.BufferedProtocol`, so bytes arrive through
the event loop's own reader callback: no thread hop, no polling, and the
protocol chooses the buffer the kernel copies into.

A frame is::

    u64 payload length | u32 buffer count | u16 id length |
    u64 length of each buffer ... | message id (utf-8) | payload | buffers

The payload is the message pickled with protocol 5. Contiguous buffers of
`OUT_OF_BAND_MIN_BYTES` or more (numpy arrays, `pickle.PickleBuffer`) leave the
pickle stream and follow it as raw bytes, so a large tensor is never copied
into the pickle stream, only written to the socket from its own memory.

On the reading side, a frame of `LARGE_FRAME_BYTES` or more gets a buffer of
its own, sized to the frame, and the kernel reads straight into it; the
unpickled arrays are views of that buffer, so a large tensor is copied once by
the kernel on each side and never by Python. Smaller frames are parsed out of
one reusable read buffer.

The message id travels outside the pickle so that a frame that cannot be
unpickled (a class that does not exist in this process, say) still names the
request it answers: the caller of that request gets the error and the
connection goes on.

Not done: tensors above some size could travel through shared memory and
skip the socket's two copies. The socket path reaches several GB/s on one
core, so it waits for a measurement that says it matters.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

_PREFIX = struct.Struct("<QIH")
_LENGTH = struct.Struct("<Q")

# Buffers smaller than this stay inside the pickle stream: for small arrays a
# separate buffer costs more in bookkeeping than the copy saves.
OUT_OF_BAND_MIN_BYTES = 64 * 1024
# Frames at least this large are read into a buffer of their own.
LARGE_FRAME_BYTES = 256 * 1024
_READ_BUFFER_BYTES = 4 * LARGE_FRAME_BYTES
# Larger socket buffers cut the number of wakeups for large tensors.
_SOCKET_BUFFER_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class ConnectionStatistics:
    """Counters of one connection, for tests and metrics."""

    frames_sent: int
    frames_received: int
    bytes_sent_in_band: int
    bytes_sent_out_of_band: int


class ConnectionClosed(ConnectionResetError):
    """A message was not sent because the connection is closed."""


class FrameDecodeError(Exception):
    """A frame arrived whole but its payload could not be unpickled."""


def _ignore(*_: Any) -> None:
    pass


def encode_frame(message_id: str, obj: Any) -> list[bytes | memoryview]:
    """Pickle `obj` into the parts of one frame, large buffers out of band.

    Raises whatever pickling raises (`pickle.PicklingError`, `TypeError`,
    `AttributeError` for unpicklable objects); nothing is sent then.
    """
    buffers: list[memoryview] = []

    def keep_small_in_band(buffer: pickle.PickleBuffer) -> bool:
        view = buffer.raw()
        if view.nbytes < OUT_OF_BAND_MIN_BYTES:
            return True
        buffers.append(view)
        return False

    payload = pickle.dumps(obj, protocol=5, buffer_callback=keep_small_in_band)
    encoded_id = message_id.encode()
    header = _PREFIX.pack(len(payload), len(buffers), len(encoded_id))
    if buffers:
        header += struct.pack(f"<{len(buffers)}Q", *(b.nbytes for b in buffers))
    return [header + encoded_id, payload, *buffers]


class Connection(asyncio.BufferedProtocol):
    """One end of a worker's socket: sends objects, delivers received ones.

    `on_message(obj)` is called for each received object, in order, from the
    event loop's reader callback. `on_decode_error(message_id, exc)` is
    called instead when a frame cannot be unpickled. `on_lost(exc)` is called
    once when the socket closes, `exc` being None on a clean end of stream.
    """

    def __init__(
        self,
        on_message: Callable[[Any], None],
        on_decode_error: Callable[[str, Exception], None],
        on_lost: Callable[[Exception | None], None],
    ) -> None:
        self._on_message = on_message
        self._on_decode_error = on_decode_error
        self._on_lost = on_lost
        self._transport: asyncio.Transport | None = None

        self._buffer = bytearray(_READ_BUFFER_BYTES)
        self._start = 0
        self._end = 0
        self._large: bytearray | None = None
        self._large_filled = 0

        self._frames_sent = 0
        self._frames_received = 0
        self._bytes_in_band = 0
        self._bytes_out_of_band = 0
        self.closed = False

    # -- sending ---------------------------------------------------------------

    def send(self, message_id: str, obj: Any) -> None:
        """Pickle and write one message; raise if it cannot be pickled or the
        connection is closed."""
        if self._transport is None or self.closed:
            raise ConnectionClosed("The connection to the worker is closed")
        head, payload, *buffers = encode_frame(message_id, obj)
        self._transport.write(bytes(head) + payload)
        for buffer in buffers:
            self._transport.write(buffer)
            self._bytes_out_of_band += len(buffer)
        self._frames_sent += 1
        self._bytes_in_band += len(payload)

    def close(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.close()
        self.closed = True

    def statistics(self) -> ConnectionStatistics:
        return ConnectionStatistics(
            frames_sent=self._frames_sent,
            frames_received=self._frames_received,
            bytes_sent_in_band=self._bytes_in_band,
            bytes_sent_out_of_band=self._bytes_out_of_band,
        )

    # -- asyncio.BufferedProtocol ----------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without deriving
        # from it, so the type is not checked here.
        self._transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
                try:
                    sock.setsockopt(socket.SOL_SOCKET, option, _SOCKET_BUFFER_BYTES)
                except OSError:  # pragma: no cover - platform limits
                    pass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        # Drop the read buffers now: the connection may live on in reference
        # cycles until a full garbage collection, and each buffer is 1 MiB.
        self._buffer = bytearray()
        self._large = None
        self._start = self._end = 0
        on_lost = self._on_lost
        # Release the owner's callbacks, which usually refer back to the
        # owner, so that a dead worker's objects are freed by reference
        # counting.
        self._on_message = self._on_decode_error = _ignore
        self._on_lost = _ignore
        on_lost(exc)

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._large is not None:
            return memoryview(self._large)[self._large_filled :]
        if self._end == len(self._buffer):
            # Move the unparsed tail to the front; it is always shorter than
            # a large frame, so it fits with room to spare.
            remaining = self._end - self._start
            self._buffer[:remaining] = self._buffer[self._start : self._end]
            self._start = 0
            self._end = remaining
        return memoryview(self._buffer)[self._end :]

    def buffer_updated(self, nbytes: int) -> None:
        if self._large is not None:
            self._large_filled += nbytes
            if self._large_filled == len(self._large):
                frame = self._large
                self._large = None
                self._large_filled = 0
                self._deliver(memoryview(frame), copy_buffers=False)
            return
        self._end += nbytes
        self._parse_small_frames()

    def eof_received(self) -> bool | None:
        return None  # close the transport

    # -- parsing ---------------------------------------------------------------

    def _parse_small_frames(self) -> None:
        buffer = self._buffer
        while True:
            available = self._end - self._start
            if available < _PREFIX.size:
                break
            payload_length, buffer_count, id_length = _PREFIX.unpack_from(
                buffer, self._start
            )
            header_length = _PREFIX.size + 8 * buffer_count + id_length
            if available < header_length:
                break
            buffers_length = 0
            if buffer_count:
                buffers_length = sum(
                    struct.unpack_from(
                        f"<{buffer_count}Q", buffer, self._start + _PREFIX.size
                    )
                )
            total = header_length + payload_length + buffers_length
            if total >= LARGE_FRAME_BYTES:
                # Give the frame a buffer of its own and read the rest of it
                # straight into place.
                self._large = bytearray(total)
                self._large[:available] = buffer[self._start : self._end]
                self._large_filled = available
                self._start = self._end = 0
                if available == total:  # pragma: no cover - needs a huge read
                    self.buffer_updated(0)
                return
            if available < total:
                break
            view = memoryview(buffer)[self._start : self._start + total]
            self._start += total
            self._deliver(view, copy_buffers=True)
        if self._start == self._end:
            self._start = self._end = 0

    def _deliver(self, frame: memoryview, copy_buffers: bool) -> None:
        payload_length, buffer_count, id_length = _PREFIX.unpack_from(frame, 0)
        offset = _PREFIX.size
        lengths: tuple[int, ...] = ()
        if buffer_count:
            lengths = struct.unpack_from(f"<{buffer_count}Q", frame, offset)
            offset += 8 * buffer_count
        message_id = bytes(frame[offset : offset + id_length]).decode()
        offset += id_length
        payload = frame[offset : offset + payload_length]
        offset += payload_length
        buffers: list[Any] = []
        for length in lengths:
            part = frame[offset : offset + length]
            # A small frame lives in the reusable read buffer, so its
            # out-of-band buffers are copied out before the buffer is reused.
            buffers.append(bytearray(part) if copy_buffers else part)
            offset += length

        self._frames_received += 1
        try:
            obj = pickle.loads(payload, buffers=buffers)
        except Exception as exc:
            self._on_decode_error(
                message_id,
                FrameDecodeError(
                    f"Could not unpickle message {message_id!r}: {type(exc).__name__}: {exc}"
                ),
            )
            return
        finally:
            payload.release()
        self._on_message(obj)


async def open_connection(
    sock: socket.socket,
    on_message: Callable[[Any], None],
    on_decode_error: Callable[[str, Exception], None],
    on_lost: Callable[[Exception | None], None],
) -> Connection:
    """Wrap a connected stream socket in a `Connection` on the running loop."""
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    _, protocol = await loop.connect_accepted_socket(
        lambda: Connection(on_message, on_decode_error, on_lost), sock
    )
    return protocol
