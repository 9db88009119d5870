"""Committed events: pages of the custody and commercial logs, and the live stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from tally.api.routers import COMMON, After, NodeDep, text
from tally.protocol.http import CommercialEvent, Event

router = APIRouter(tags=["events"], responses=COMMON)


@router.get("/v1/events", summary="Committed events after a log index",
            response_model=list[Event])
def events(node: NodeDep, after: After = -1, limit: int = Query(1000, ge=1, le=10_000)) -> Any:
    return node.reader.events(after, limit)


@router.get("/v1/commercial/events", summary="Contract events (the commercial log)",
            response_model=list[CommercialEvent])
def commercial_events(node: NodeDep, after: After = -1,
                      limit: int = Query(1000, ge=1, le=10_000),
                      contract: str | None = None) -> Any:
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

    async def generate() -> AsyncIterator[str]:
        wake = asyncio.Event()

        def wake_up(_block: object) -> None:
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody to wake
                loop.call_soon_threadsafe(wake.set)

        node.add_listener(wake_up)
        try:
            cursor = after
            while not await request.is_disconnected():
                batch = await asyncio.to_thread(node.reader.events, cursor, 1000)
                for ev in batch:
                    cursor = ev["log_index"]
                    yield f"id: {cursor}\nevent: {ev['type']}\ndata: {json.dumps(ev)}\n\n"
                if not batch:
                    wake.clear()
                    try:
                        await asyncio.wait_for(wake.wait(), timeout=15)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
        finally:
            node.remove_listener(wake_up)

    return StreamingResponse(generate(), media_type="text/event-stream")
