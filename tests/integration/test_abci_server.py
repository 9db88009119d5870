"""The ABCI server against a raw-socket client speaking CometBFT's framing.

No CometBFT here: these pin down the wire behaviour (uvarint framing, pipelining until
Flush, ordering, the exception path) that the process tests rely on without seeing.
"""

from __future__ import annotations

import time

import pytest

from tally.consensus.abci import (
    Application,
    ThreadedServer,
    abci,
    take_txs_within,
    tx_proto_size,
    vote_extension_sign_bytes,
)
from tally.consensus.abci.client import ABCIClient, ABCIClosed
from tally.consensus.abci.server import DISPATCH, response_field_key
from tally.consensus.abci.wire import (
    FramingError,
    decode_uvarint,
    encode_uvarint,
    frame,
    split_frames,
)


def pending(c: ABCIClient, wait: float = 0.3) -> bytes:
    """Whatever the server sends within `wait` seconds unasked (b'' if nothing)."""
    c.sock.settimeout(wait)
    try:
        return c.sock.recv(65536)
    except TimeoutError:
        return b""
    finally:
        c.sock.settimeout(5)


def test_uvarint_roundtrip_and_partial() -> None:
    for n in (0, 1, 127, 128, 300, 2**31 - 1, 2**63):
        enc = encode_uvarint(n)
        assert decode_uvarint(enc) == (n, len(enc))
        assert decode_uvarint(enc[:-1]) is None or len(enc) == 1
    assert encode_uvarint(300) == b"\xac\x02"  # protobuf's own example
    buf = bytearray(frame(b"abc") + frame(b"") + frame(b"x" * 200)[:50])
    frames, used = split_frames(buf)
    assert frames == [b"abc", b""] and used == 5
    with pytest.raises(FramingError):
        split_frames(bytearray(encode_uvarint(100) + b"x"), max_size=10)


def test_prepare_proposal_size_rule_matches_cometbft() -> None:
    # types.ComputeProtoSizeForTxs: tag + uvarint(len) + len, per tx
    assert tx_proto_size(b"") == 2 and tx_proto_size(b"a" * 127) == 129
    assert tx_proto_size(b"a" * 128) == 131
    txs = [b"a" * 10] * 5  # 12 bytes each
    assert take_txs_within(txs, 36) == txs[:3]
    assert take_txs_within(txs, 35) == txs[:2]
    resp = Application().prepare_proposal(abci.RequestPrepareProposal(txs=txs, max_tx_bytes=40))
    assert list(resp.txs) == txs[:3]


def test_vote_extension_sign_bytes_layout() -> None:
    b = vote_extension_sign_bytes("c", 5, 1, b"ext")
    # uvarint length, then CanonicalVoteExtension: 1:bytes, 2:sfixed64, 3:sfixed64, 4:string
    body = (
        b"\x0a\x03ext"
        + b"\x11"
        + (5).to_bytes(8, "little")
        + b"\x19"
        + (1).to_bytes(8, "little")
        + b"\x22\x01c"
    )
    assert b == bytes([len(body)]) + body


class Recorder(Application):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def check_tx(self, req: abci.RequestCheckTx) -> abci.ResponseCheckTx:
        self.seen.append(req.tx.decode())
        return abci.ResponseCheckTx(code=0 if req.tx != b"bad" else 7, log=req.tx.decode())

    def info(self, req: abci.RequestInfo) -> abci.ResponseInfo:
        return abci.ResponseInfo(last_block_height=42, data=req.version)

    async def query(self, req: abci.RequestQuery) -> abci.ResponseQuery:  # async works too
        return abci.ResponseQuery(value=req.data[::-1])

    def finalize_block(self, req: abci.RequestFinalizeBlock) -> abci.ResponseFinalizeBlock:
        raise ValueError(f"boom at height {req.height}")


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_pipelined_requests_answered_in_order_on_flush(transport: str, tmp_path) -> None:
    addr = "tcp://127.0.0.1:0" if transport == "tcp" else f"unix://{tmp_path}/abci.sock"
    app = Recorder()
    with ThreadedServer(app, addr) as srv, ABCIClient(srv.address) as c:
        c.send(*[abci.Request(check_tx=abci.RequestCheckTx(tx=b"tx%d" % i)) for i in range(500)])
        c.send(abci.Request(check_tx=abci.RequestCheckTx(tx=b"bad")))
        c.send_now()
        # Responses are buffered until Flush, like CometBFT's own server.
        assert pending(c) == b""
        responses = c.flush()
        assert [r.WhichOneof("value") for r in responses] == ["check_tx"] * 501
        logs = [(r.check_tx.code, r.check_tx.log) for r in responses]
        assert logs == [(0, f"tx{i}") for i in range(500)] + [(7, "bad")]

        c.send(
            abci.Request(echo=abci.RequestEcho(message="hi")),
            abci.Request(info=abci.RequestInfo(version="0.38.26")),
            abci.Request(query=abci.RequestQuery(data=b"abc")),
        )
        echo, info, query = c.flush()
        assert echo.echo.message == "hi"
        assert info.info.last_block_height == 42 and info.info.data == "0.38.26"
        assert query.query.value == b"cba"


def test_answers_are_framed_exactly_as_protobuf_would_serialize_them() -> None:
    """The server prefixes each answer's bytes with its Response field key instead of
    building a Response: the bytes must be the ones protobuf itself would write, for
    every request kind, empty answers (all defaults) included."""
    samples = {
        "check_tx": abci.ResponseCheckTx(code=7, log="x" * 300, gas_wanted=2**40),
        "finalize_block": abci.ResponseFinalizeBlock(
            tx_results=[abci.ExecTxResult(code=i, data=b"d" * i) for i in range(200)],
            app_hash=b"h" * 32),
        "info": abci.ResponseInfo(data="tally", last_block_height=2**62),
    }
    for kind, (_, response_field) in DISPATCH.items():
        message_type = type(getattr(abci.Response(), response_field))
        for answer in (message_type(), samples.get(kind, message_type())):
            inner = answer.SerializeToString()
            framed = response_field_key(response_field) + encode_uvarint(len(inner)) + inner
            assert framed == abci.Response(**{response_field: answer}).SerializeToString(), kind


def test_application_exception_is_reported_and_stops_server() -> None:
    srv = ThreadedServer(Recorder()).start()
    try:
        other = ABCIClient(srv.address)
        c = ABCIClient(srv.address)
        c.send(abci.Request(finalize_block=abci.RequestFinalizeBlock(height=3)))
        c.send(abci.Request(flush=abci.RequestFlush()))
        c.send_now()
        r = c.recv()
        assert r.WhichOneof("value") == "exception"
        assert "boom at height 3" in r.exception.error
        with pytest.raises(ABCIClosed):  # connection closed, no answer to the Flush
            c.recv()
        assert isinstance(srv.error, ValueError)
        # The whole server stops: other connections are closed, no new ones accepted.
        with pytest.raises(ABCIClosed):
            other.recv()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                ABCIClient(srv.address).close()
            except OSError:
                break
            time.sleep(0.05)
        else:
            pytest.fail("server still accepting after application error")
    finally:
        srv.stop()


def test_garbage_closes_only_that_connection() -> None:
    """A peer that is not speaking ABCI is dropped; the app and other peers carry on."""
    with ThreadedServer(Recorder()) as srv, ABCIClient(srv.address) as good:
        bad = ABCIClient(srv.address)
        bad.sock.sendall(frame(b"\xff\xff\xff"))  # not a protobuf Request
        with pytest.raises(ABCIClosed):
            bad.recv()
        bad.close()
        assert srv.error is None
        info = good.call(abci.Request(info=abci.RequestInfo()))
        assert info.info.last_block_height == 42


class SlowCheck(Application):
    """CheckTx takes 10 ms, as a 250-transaction bundle does; calls are recorded."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def check_tx(self, req: abci.RequestCheckTx) -> abci.ResponseCheckTx:
        time.sleep(0.01)
        self.calls.append("check")
        return abci.ResponseCheckTx(code=0)

    def finalize_block(self, req: abci.RequestFinalizeBlock) -> abci.ResponseFinalizeBlock:
        self.calls.append("finalize")
        return abci.ResponseFinalizeBlock(app_hash=b"h")


def test_a_burst_of_slow_checktx_holds_a_finalize_block_back_by_one_at_most() -> None:
    """The server yields to other connections after 8 queued requests or 2 ms, whichever
    comes first: a FinalizeBlock arriving behind 30 pipelined slow CheckTx waits for the
    one in progress, not for a batch of them (it used to wait for up to 8)."""
    app = SlowCheck()
    with ThreadedServer(app) as srv, ABCIClient(srv.address) as mempool, \
            ABCIClient(srv.address) as consensus:
        mempool.send(*[abci.Request(check_tx=abci.RequestCheckTx(tx=b"t%d" % i))
                       for i in range(30)])
        mempool.send_now()
        while "check" not in app.calls:
            time.sleep(0.001)
        answer = consensus.call(abci.Request(finalize_block=abci.RequestFinalizeBlock(
            height=1)))
        assert answer.finalize_block.app_hash == b"h"
        assert app.calls.index("finalize") <= 3, app.calls
        assert len(mempool.flush()) == 30
