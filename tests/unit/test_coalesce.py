"""Group sending: what concurrent submitters on one node hand CometBFT, and when."""

from __future__ import annotations

import threading
import time

import pytest

from tally.consensus.coalesce import GroupSender


class Gate:
    """A send function that records each call and holds the first until released."""

    def __init__(self, fail_call: int | None = None) -> None:
        self.calls: list[list[bytes]] = []
        self.release = threading.Event()
        self.fail_call = fail_call

    def __call__(self, raws: list[bytes]) -> None:
        self.calls.append(raws)
        if len(self.calls) == 1:
            assert self.release.wait(5)
        if self.fail_call == len(self.calls):
            raise ConnectionError("CometBFT is down")


def _wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def _start(sender: GroupSender, raws: list[bytes], errors: list) -> threading.Thread:
    def run() -> None:
        try:
            sender.send(raws)
        except Exception as exc:
            errors.append(exc)
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_an_idle_node_sends_at_once_and_a_busy_one_sends_what_queued_as_one_call() -> None:
    gate = Gate()
    sender = GroupSender(gate)
    errors: list = []
    first = _start(sender, [b"a"], errors)
    _wait_for(lambda: gate.calls)  # sent at once, no timer
    later = []
    for n, raws in enumerate([[b"b"], [b"c1", b"c2"], [b"d"]]):
        later.append(_start(sender, raws, errors))
        _wait_for(lambda n=n: len(sender._queue) == n + 1)  # queued behind the first
    assert all(t.is_alive() for t in later)  # nobody returns before its send
    gate.release.set()
    for thread in [first, *later]:
        thread.join(5)
    assert gate.calls == [[b"a"], [b"b", b"c1", b"c2", b"d"]]
    assert errors == []
    sender.send([b"e"])  # idle again: alone, at once
    assert gate.calls[-1] == [b"e"]


def test_every_caller_of_a_failed_send_gets_its_error_and_the_next_send_goes_on() -> None:
    gate = Gate(fail_call=2)
    sender = GroupSender(gate)
    errors: list = []
    first = _start(sender, [b"a"], errors)
    _wait_for(lambda: gate.calls)
    later = [_start(sender, [b"b"], errors)]
    _wait_for(lambda: len(sender._queue) == 1)
    later.append(_start(sender, [b"c"], errors))
    _wait_for(lambda: len(sender._queue) == 2)
    gate.release.set()
    for thread in [first, *later]:
        thread.join(5)
    assert [str(e) for e in errors] == ["CometBFT is down"] * 2
    sender.send([b"d"])
    assert gate.calls == [[b"a"], [b"b", b"c"], [b"d"]]


def test_a_lone_sender_gets_its_own_error() -> None:
    def refuse(raws: list[bytes]) -> None:
        raise ConnectionError(f"refused {len(raws)}")

    with pytest.raises(ConnectionError, match="refused 1"):
        GroupSender(refuse).send([b"x"])
