"""Group sending: concurrent submissions share one hand-over to CometBFT.

A node's API serves many clients at once, most of them sending one transaction per
request. Handing each to CometBFT alone pays CometBFT's per-transaction cost each time
(decision 0011). Here, the first caller sends at once; callers that arrive while that
send is in flight queue up, and when it returns, one of them sends everything queued as
one call (so as bundles). Nobody waits for a timer: an idle node sends a lone
transaction immediately, and a busy one batches exactly as much as arrived during the
previous send. Every caller returns only after the send that carried its transactions,
with that send's error if it failed, as if it had sent alone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Waiting:
    raws: list[bytes]
    sent: bool = False
    error: BaseException | None = None


class GroupSender:
    def __init__(self, send: Callable[[list[bytes]], None]) -> None:
        self._send = send
        self._cond = threading.Condition()
        self._queue: list[_Waiting] = []
        self._sending = False

    def send(self, raws: list[bytes]) -> None:
        """Send ``raws`` (in order, after anything queued before them); raise what the
        send that carried them raised."""
        if not raws:
            return
        mine = _Waiting(list(raws))
        with self._cond:
            self._queue.append(mine)
            while self._sending and not mine.sent:
                self._cond.wait()
            if not mine.sent:  # nobody is sending: send the whole queue, this one included
                self._sending = True
                group, self._queue = self._queue, []
        if mine.sent:
            if mine.error is not None:
                raise mine.error
            return
        error: BaseException | None = None
        try:
            self._send([raw for waiting in group for raw in waiting.raws])
        except BaseException as exc:  # handed to every caller of the group
            error = exc
        with self._cond:
            for waiting in group:
                waiting.sent, waiting.error = True, error
            self._sending = False
            self._cond.notify_all()
        if error is not None:
            raise error


__all__ = ["GroupSender"]
