"""ABCI socket framing: each protobuf message is preceded by its length as an unsigned varint.

CometBFT v0.38 writes frames with ``protoio.NewDelimitedWriter`` (``binary.PutUvarint``);
older Tendermint releases used a zigzag *signed* varint, which is why a server written
against old docs fails on the very first message.  Kept separate from the server so a
test client or a future gRPC-free tool can reuse it.
"""

from __future__ import annotations

MAX_MESSAGE_SIZE = (1 << 31) - 1  # CometBFT's own limit (math.MaxInt32)


class FramingError(ValueError):
    """The byte stream is not valid uvarint-delimited protobuf (peer bug or wrong protocol)."""


def encode_uvarint(n: int) -> bytes:
    if n < 0:
        raise ValueError("uvarint cannot encode a negative number")
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def decode_uvarint(buf: bytes | bytearray | memoryview, pos: int = 0) -> tuple[int, int] | None:
    """Return (value, position after it), or None if `buf` ends inside the varint."""
    result = 0
    shift = 0
    end = len(buf)
    while pos < end:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise FramingError("varint longer than 10 bytes")
    return None


def frame(payload: bytes) -> bytes:
    """Length-prefix one serialized message."""
    return encode_uvarint(len(payload)) + payload


def split_frames(buf: bytearray, max_size: int = MAX_MESSAGE_SIZE) -> tuple[list[bytes], int]:
    """Cut every complete frame out of `buf`.

    Returns the payloads and how many bytes of `buf` they used; the caller keeps the
    rest for the next read.  Raises FramingError on a length over `max_size`.
    """
    frames: list[bytes] = []
    pos = 0
    end = len(buf)
    while pos < end:
        head = decode_uvarint(buf, pos)
        if head is None:
            break
        size, start = head
        if size > max_size:
            raise FramingError(f"message of {size} bytes exceeds limit {max_size}")
        if start + size > end:
            break
        frames.append(bytes(buf[start : start + size]))
        pos = start + size
    return frames, pos
