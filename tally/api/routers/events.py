"""Committed events: pages of the custody and commercial logs, and the live stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from tally.api import access
from tally.api.routers import COMMON, After, NodeDep, text
from tally.protocol.http import CommercialEvent, Event

router = APIRouter(tags=["events"], responses=COMMON)


@router.get("/v1/events", summary="Committed events after a log index",
            response_model=list[Event])
def events(node: NodeDep, request: Request, after: After = -1,
           limit: int = Query(1000, ge=1, le=10_000)) -> Any:
    """On an authenticated node, the events of the page its identity may see (the page
    may so hold fewer than ``limit``; the next one starts after the last returned)."""
    return access.visible(request, node.reader.events(after, limit))


@router.get("/v1/commercial/events", summary="Contract events (the commercial log)",
            response_model=list[CommercialEvent])
def commercial_events(node: NodeDep, request: Request, after: After = -1,
                      limit: int = Query(1000, ge=1, le=10_000),
                      contract: str | None = None) -> Any:
    access.check(request, access.regulators("the commercial log"))
    return node.reader.commercial_events(after, limit, contract)


@router.get("/v1/events/stream", summary="Server-sent events: every committed event, live",
            response_class=StreamingResponse,
            responses=text("one `event:` per committed event; `data:` is an Event as JSON, "
                           "`id:` its log index", "text/event-stream"))
async def stream(node: NodeDep, request: Request, after: After = -1) -> StreamingResponse:
    """The stream's commit listener lives exactly as long as its generator: registered
    when the response starts streaming, removed in ``finally`` however the stream ends
    (client gone, server stopping, error). It used to be registered for the life of the
    node, so every closed stream left one behind, and every commit called them all."""
    loop = asyncio.get_running_loop()

    def read(cursor: int) -> tuple[int, list[dict[str, Any]]]:
        """The next events after ``cursor`` this identity may see, and the new cursor
        (past the ones it may not: they are skipped, not waited for)."""
        batch = node.reader.events(cursor, 1000)
        return (batch[-1]["log_index"] if batch else cursor), access.visible(request, batch)

    async def generate() -> AsyncIterator[str]:
        wake = asyncio.Event()

        def wake_up(_block: object) -> None:
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody to wake
                loop.call_soon_threadsafe(wake.set)

        node.add_listener(wake_up)
        try:
            cursor = after
            while not await request.is_disconnected():
                last, batch = await asyncio.to_thread(read, cursor)
                for ev in batch:
                    yield (f"id: {ev['log_index']}\nevent: {ev['type']}\n"
                           f"data: {json.dumps(ev)}\n\n")
                advanced, cursor = last != cursor, last
                if not advanced:
                    wake.clear()
                    try:
                        await asyncio.wait_for(wake.wait(), timeout=15)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
        finally:
            node.remove_listener(wake_up)

    return StreamingResponse(generate(), media_type="text/event-stream")
