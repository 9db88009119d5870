# Type stub of the native canonical-CBOR fast path (native/cbor/src/lib.rs, decision
# 0016), for the type checker: the extension module itself carries no annotations.
from typing import Any

MAX_DEPTH: int

def loads_canonical(data: bytes) -> Any | None:
    """The value of ``data`` if it is the canonical encoding of an array or a map inside
    the fast path's subset; None otherwise, and then the reference decoder decides."""
