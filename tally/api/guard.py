"""The request-body guard: a pure ASGI middleware in front of every route.

Invariants, for every request that may carry a body (any method but GET, HEAD, OPTIONS):

* At most the route's limit is ever held in memory: a declared ``Content-Length`` over
  it is refused before a byte of the body is read, and a body sent in chunks (no length)
  is counted as it streams and refused the moment the count passes the limit. The
  answer is 413 ``TX_OVERSIZE`` with ``Connection: close``, so the server stops reading
  the rest instead of draining it.
* The whole body arrives within ``body_timeout_s`` of the first read, or the answer is
  408 ``INVALID_REQUEST`` and the connection is closed (a client trickling a body cannot
  hold a worker and a connection for ever).
* A JSON body is parsed once here, and what Python's parser cannot take — nesting deeper
  than ``json_depth`` (deep nesting makes the parser recurse), an integer over Python's
  4,300 digits, bytes that are not UTF-8 — is a typed 400 ``INVALID_REQUEST`` rather than
  FastAPI's untyped "error parsing the body". Malformed JSON is left to FastAPI, whose
  answer is already a typed 422.

The routes then read the body from memory, exactly as it arrived.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tally.errors import Code

_BODYLESS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Bodies up to this size are checked on the event loop; larger ones (a batch) in a
#: thread, so that parsing megabytes does not stall every other connection.
_INLINE_PARSE = 256 * 1024


async def send_error(send: Send, status: int, code: Code, message: str, *,
                     close: bool = False, headers: list[tuple[bytes, bytes]] | None = None
                     ) -> None:
    """An error answer in the API's shape, written straight to the ASGI ``send``."""
    body = json.dumps({"code": str(code), "message": message}).encode()
    head = [(b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()), *(headers or [])]
    if close:
        head.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def json_depth_over(value: Any, limit: int) -> bool:
    """Whether a parsed JSON value nests containers deeper than ``limit`` (iterative: a
    value Python could parse must not be able to exhaust the stack here)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, (dict, list)))
    return False


def json_problem(body: bytes, depth: int) -> str | None:
    """Why this JSON body is refused before validation, or None (also None for a body
    that is not JSON at all: FastAPI answers that one with its own typed 422)."""
    try:
        value = json.loads(body)
    except json.JSONDecodeError:
        return None
    except UnicodeDecodeError:
        return "the body is not UTF-8"
    except RecursionError:
        return f"the JSON body nests deeper than {depth} levels"
    except ValueError:
        # CPython refuses integers over sys.get_int_max_str_digits() digits (4,300).
        return "a number in the JSON body has too many digits"
    if json_depth_over(value, depth):
        return f"the JSON body nests deeper than {depth} levels"
    return None


class BodyGuard:
    """Reads a request's body under ``limit_of(path)`` bytes and ``timeout`` seconds,
    checks it if it is JSON, then hands it to the app from memory."""

    def __init__(self, app: ASGIApp, *, limit_of: Callable[[str], int], timeout: float,
                 json_depth: int) -> None:
        self.app = app
        self.limit_of = limit_of
        self.timeout = timeout
        self.json_depth = json_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _BODYLESS:
            await self.app(scope, receive, send)
            return
        limit = self.limit_of(scope["path"])
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                await send_error(send, 400, Code.INVALID_REQUEST,
                                 "Content-Length must be a number", close=True)
                return
            if int(length) > limit:
                await send_error(send, 413, Code.OVERSIZE, f"request body over {limit} bytes",
                                 close=True)
                return
        chunks: list[bytes] = []
        size = 0
        deadline = asyncio.get_running_loop().time() + self.timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            try:
                if left <= 0:
                    raise TimeoutError
                message = await asyncio.wait_for(receive(), left)
            except TimeoutError:
                await send_error(send, 408, Code.INVALID_REQUEST,
                                 f"the request body did not arrive within {self.timeout:g} s",
                                 close=True)
                return
            if message["type"] == "http.disconnect":
                return  # the client left: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await send_error(send, 413, Code.OVERSIZE, f"request body over {limit} bytes",
                                 close=True)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        del chunks
        content_type = headers.get(b"content-type", b"application/json").split(b";")[0]
        if body and (content_type.strip().endswith(b"json")):
            problem = (json_problem(body, self.json_depth) if len(body) <= _INLINE_PARSE
                       else await asyncio.to_thread(json_problem, body, self.json_depth))
            if problem is not None:
                await send_error(send, 400, Code.INVALID_REQUEST, problem)
                return

        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect

        await self.app(scope, replay, send)
