"""AWS event streams (`application/vnd.amazon.eventstream`): Bedrock's binary stream framing.

Each message: total length (4 bytes, big-endian), headers length (4), CRC32 of those 8 bytes (4),
the headers, the payload, CRC32 of everything before it (4). A header is a name (1 length byte,
then UTF-8), a value type (1 byte) and the value: booleans (types 0, 1, no bytes), integers
(2: 1 byte, 3: 2, 4: 4, 5: 8), a timestamp (8: 8 bytes), length-prefixed bytes (6) or a string
(7) with a 2-byte length, a UUID (9: 16 bytes, given as hex).

`decode_event_stream(body)` yields each message after checking both of its CRCs; the first broken
message raises `EventStreamError` naming its byte offset, after the good ones before it were
yielded (a recording cut short still shows what it got).

Pure Python (no mitmproxy).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["EventStreamError", "EventStreamMessage", "decode_event_stream"]


class EventStreamError(ValueError):
    """An `application/vnd.amazon.eventstream` body whose framing is broken at `offset`."""

    def __init__(self, message: str, offset: int) -> None:
        self.offset = offset
        super().__init__(f"byte {offset}: {message}")


@dataclass(frozen=True, slots=True)
class EventStreamMessage:
    """One message of an AWS event stream: its headers (`:event-type` ...) and its payload."""

    headers: dict[str, object]
    payload: bytes


_PRELUDE = struct.Struct(">III")  # total length, headers length, prelude CRC
_MESSAGE_OVERHEAD = _PRELUDE.size + 4  # the prelude and the message CRC
# Header value types: fixed-size ones (struct format) and length-prefixed ones (bytes, string).
_FIXED_HEADER_VALUES: dict[int, str] = {2: ">b", 3: ">h", 4: ">i", 5: ">q", 8: ">q"}
_UUID_HEADER = 9


def decode_event_stream(body: bytes) -> Iterator[EventStreamMessage]:
    """The messages of an AWS event stream, checking both CRCs of each.

    Framing: total length (4 bytes), headers length (4), CRC32 of those 8 bytes (4), the headers,
    the payload, CRC32 of everything before it (4). Raises EventStreamError at the first broken
    message, after yielding the good ones before it.
    """
    offset = 0
    while offset < len(body):
        if len(body) - offset < _MESSAGE_OVERHEAD:
            raise EventStreamError("truncated prelude", offset)
        total, headers_length, prelude_crc = _PRELUDE.unpack_from(body, offset)
        if zlib.crc32(body[offset : offset + 8]) != prelude_crc:
            raise EventStreamError("prelude CRC does not match", offset)
        if total < _MESSAGE_OVERHEAD + headers_length or offset + total > len(body):
            raise EventStreamError(f"bad message length {total}", offset)
        end = offset + total
        (message_crc,) = struct.unpack_from(">I", body, end - 4)
        if zlib.crc32(body[offset : end - 4]) != message_crc:
            raise EventStreamError("message CRC does not match", offset)
        headers_start = offset + _PRELUDE.size
        payload_start = headers_start + headers_length
        headers = _event_stream_headers(body[headers_start:payload_start], headers_start)
        yield EventStreamMessage(headers, body[payload_start : end - 4])
        offset = end


def _event_stream_headers(data: bytes, base: int) -> dict[str, object]:
    headers: dict[str, object] = {}
    i = 0
    try:
        while i < len(data):
            name_length = data[i]
            name = data[i + 1 : i + 1 + name_length].decode("utf-8", errors="replace")
            i += 1 + name_length
            kind = data[i]
            i += 1
            value: object
            if kind in (0, 1):
                value = kind == 0
            elif kind in _FIXED_HEADER_VALUES:
                fmt = _FIXED_HEADER_VALUES[kind]
                (value,) = struct.unpack_from(fmt, data, i)
                i += struct.calcsize(fmt)
            elif kind in (6, 7):
                (length,) = struct.unpack_from(">H", data, i)
                raw = data[i + 2 : i + 2 + length]
                value = raw.decode("utf-8", errors="replace") if kind == 7 else raw
                i += 2 + length
            elif kind == _UUID_HEADER:
                value = data[i : i + 16].hex()
                i += 16
            else:
                raise EventStreamError(f"unknown header value type {kind}", base + i - 1)
            headers[name] = value
    except (IndexError, struct.error):
        raise EventStreamError("truncated header", base + i) from None
    return headers
