"""The typed SDK, sync and async, against a node's API served on a loopback port."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import cbor2
import httpx
import pytest

from tally.api.app import create_app
from tally.errors import Code
from tally.evidence.verify import verify_bundle
from tally.protocol.header import BlockHeader
from tally.protocol.receipt import Receipt as ProtocolReceipt
from tally.sdk import (
    AccountInfo,
    Asset,
    AsyncTallyClient,
    Block,
    Event,
    EvidenceBundle,
    ExecutionFailed,
    Holding,
    NodeUnreachable,
    NotFound,
    Receipt,
    StateProof,
    Status,
    TallyClient,
    TallyError,
    Transaction,
    TxRejected,
    Unavailable,
    VerificationFailed,
    verify_evidence,
)
from tests.support.api import free_port
from tests.support.chain import Chain


def test_the_sdk_receipt_is_the_protocol_receipt() -> None:
    assert Receipt is ProtocolReceipt


def test_reads_are_typed(api) -> None:  # noqa: F811
    chain, url = api
    chain.issue("BOND", 10, to="alice")
    moved = chain.ok("alice", "custody.transfer", {"asset": "BOND", "to": chain.addr("bob"),
                                                   "quantity": 3})
    with TallyClient(url, genesis_hash=chain.genesis.hash.hex()) as client:
        status = client.status()
        assert isinstance(status, Status) and status.height == moved.height
        assert status.genesis_hash == chain.genesis.hash.hex() and status.diverged is None

        block = client.block(moved.height)
        assert isinstance(block, Block) and block.txs == [moved.tx]
        header = block.header.to_header()
        assert isinstance(header, BlockHeader) and header.height == moved.height
        assert header.hash(chain.suite.hash).hex() == block.hash  # the typed header is exact
        assert client.block().hash == status.block_hash  # latest
        assert client.checkpoint(moved.height).startswith(f"tally/{chain.genesis.chain_id}/")

        tx = client.tx(moved.tx)
        assert isinstance(tx, Transaction) and tx.kind == "custody.transfer"
        assert tx.receipt.to_receipt() == client.receipt(moved.tx) == moved
        assert isinstance(tx.events[0], Event) and tx.events[0].sender == chain.addr("alice")

        asset = client.asset("BOND")
        assert isinstance(asset, Asset) and asset.asset_class == "security"
        assert asset.holders[chain.addr("bob")] == Holding(q=3, p=0, f=0)
        assert asset.to_dict()["class"] == "security"  # the wire names come back
        history = client.history("BOND")
        assert [(e.type, e.quantity) for e in history] == [("asset.issue", 10),
                                                           ("custody.transfer", 3)]
        assert history == client.events()
        assert history[1].to_dict()["from"] == chain.addr("alice")
        info = client.account_info(chain.addr("alice"))
        assert info == AccountInfo(address=chain.addr("alice"), nonce=1, roles=[])

        proof = client.holding("BOND", chain.addr("bob"))
        assert isinstance(proof, StateProof) and proof.value == {"q": 3, "p": 0, "f": 0}
        assert client.verified_holding("BOND", chain.addr("bob")).held == 3
        assert client.verified_state("asset/BOND").value["supply"] == 10

        bundle, verdict = client.verified_evidence(1, consistency=True)
        assert isinstance(bundle, EvidenceBundle) and verdict.signers == ["validator-0"]
        assert verify_bundle(bundle.to_dict()).event["quantity"] == 3  # the document as sent
        size = status.log_size
        assert client.inclusion_proof(0, size).tree_size == size
        assert client.consistency_proof(1, size).second == size


def test_submit_returns_the_id_and_submit_and_wait_the_receipt(api) -> None:  # noqa: F811
    chain, url = api
    chain.issue("BOND", 10, to="alice")
    with TallyClient(url) as client:
        raw = chain.sign("alice", "custody.transfer", {"asset": "BOND",
                                                       "to": chain.addr("bob"), "quantity": 1})
        tx_id = client.submit(raw)
        assert isinstance(tx_id, str) and len(tx_id) == 64
        deadline = time.monotonic() + 10
        while True:  # admitted, not committed: the receipt comes with the block
            try:
                assert client.receipt(tx_id).ok
                break
            except NotFound:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        waited = client.submit_and_wait(chain.sign(
            "alice", "custody.transfer", {"asset": "BOND", "to": chain.addr("bob"),
                                          "quantity": 1}))
        assert isinstance(waited, Receipt) and waited.ok and waited.events

        alice = client.account(chain.keys["alice"])
        pending = alice.nowait.transfer("BOND", to=chain.addr("bob"), quantity=1)
        assert isinstance(pending, str)
        receipt = alice.transfer("BOND", to=chain.addr("bob"), quantity=1)  # waits
        assert isinstance(receipt, Receipt) and receipt.ok
        assert client.receipt(pending).ok  # committed before the later transfer

        good = chain.sign("bob", "custody.transfer", {"asset": "BOND", "to": chain.addr("alice"),
                                                      "quantity": 1})
        gap = chain.sign("bob", "custody.transfer", {"asset": "BOND", "to": chain.addr("alice"),
                                                     "quantity": 1}, nonce=9)
        admitted = client.submit_batch([good, gap])
        assert isinstance(admitted[0], str)
        assert isinstance(admitted[1], TxRejected) and admitted[1].code == Code.NONCE_GAP
        more = chain.sign("bob", "custody.transfer", {"asset": "BOND", "to": chain.addr("alice"),
                                                      "quantity": 1})
        committed = client.submit_batch_and_wait([more, good])
        assert isinstance(committed[0], Receipt) and committed[0].ok
        assert isinstance(committed[1], TxRejected)
        assert committed[1].code in (Code.NONCE_REPLAYED, Code.DUPLICATE)


def test_errors_are_typed(api) -> None:  # noqa: F811
    chain, url = api
    chain.issue("BOND", 10, to="alice")
    with TallyClient(url) as client:
        raw = chain.sign("alice", "custody.transfer", {"asset": "BOND",
                                                       "to": chain.addr("bob"), "quantity": 1})
        assert client.submit_and_wait(raw).ok
        with pytest.raises(TxRejected) as refused:  # the node's refusal, typed by its code
            client.submit_and_wait(raw)
        assert refused.value.code == Code.NONCE_REPLAYED
        with pytest.raises(NotFound):
            client.tx("00" * 32)
        with pytest.raises(TallyError) as bad:
            client.tx("not-hex")
        assert bad.value.code == Code.INVALID_REQUEST
        alice = client.account(chain.keys["alice"])
        with pytest.raises(ExecutionFailed) as failed:  # in a block, failed: its receipt's code
            alice.transfer("BOND", to=chain.addr("bob"), quantity=500)
        assert failed.value.code == Code.INSUFFICIENT_UNITS
        kept = alice.send("custody.transfer", {"asset": "BOND", "to": chain.addr("bob"),
                                               "quantity": 500}, check=False)
        assert not kept.ok and isinstance(kept.error(), ExecutionFailed)


def test_a_tampered_proof_is_a_verification_failure_not_unavailable(api) -> None:  # noqa: F811
    chain, url = api
    chain.issue("BOND", 10, to="alice")
    with TallyClient(url, genesis_hash=chain.genesis.hash.hex()) as client:
        bundle = client.evidence(0).to_dict()
        leaf = cbor2.loads(base64.b64decode(bundle["event"]["leaf"]))
        leaf["quantity"] += 1
        forged = dict(bundle, event=dict(bundle["event"], leaf=base64.b64encode(
            cbor2.dumps(leaf, canonical=True)).decode()))
        with pytest.raises(VerificationFailed) as info:
            verify_evidence(forged, chain.genesis.hash.hex())
        assert info.value.code == Code.VERIFICATION_FAILED and info.value.reason
        assert not isinstance(info.value, Unavailable)


def test_unreachable_is_node_unreachable_for_both_clients() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with TallyClient(url, timeout=2) as client, pytest.raises(NodeUnreachable) as info:
        client.status()
    assert isinstance(info.value, Unavailable) and info.value.code == Code.UNAVAILABLE

    async def main() -> None:
        async with AsyncTallyClient(url, timeout=2) as client:
            with pytest.raises(NodeUnreachable):
                await client.submit(b"\x00")

    asyncio.run(main())


def test_async_client_against_a_running_node(api) -> None:  # noqa: F811
    chain, url = api

    async def main() -> dict[str, Any]:
        async with AsyncTallyClient(url, genesis_hash=chain.genesis.hash.hex()) as client:
            issuer = client.account(chain.keys["issuer"])
            alice = client.account(chain.keys["alice"])
            issued = await issuer.issue("BOND", asset_class="security", name="Bond",
                                        quantity=50, to=alice.address)
            assert isinstance(issued, Receipt) and issued.ok
            pending = await alice.nowait.transfer("BOND", to=chain.addr("bob"), quantity=2)
            moved = await alice.transfer("BOND", to=chain.addr("bob"), quantity=3)
            with pytest.raises(ExecutionFailed):
                await alice.transfer("BOND", to=chain.addr("bob"), quantity=500)
            status, asset, held, first = await asyncio.gather(
                client.status(), client.asset("BOND"),
                client.verified_holding("BOND", chain.addr("bob")), client.receipt(pending))
            events = []
            async for event in client.stream_events():
                events.append(event)
                if len(events) == 3:
                    break
            with pytest.raises(NotFound):
                await client.asset("NOPE")
            return {"moved": moved, "status": status, "asset": asset, "held": held,
                    "first": first, "events": events}

    got = asyncio.run(main())
    assert got["first"].ok and got["moved"].ok
    assert got["status"].height >= got["moved"].height
    assert got["asset"].holders[chain.addr("bob")].q == 5 == got["held"].held
    assert [e.type for e in got["events"]] == ["asset.issue", "custody.transfer",
                                               "custody.transfer"]


def test_async_client_over_the_asgi_transport(chain: Chain) -> None:
    """No server at all: the app in process, for tests and embedding."""
    chain.issue("BOND", 10, to="alice")

    async def main() -> tuple[Status, list[Event]]:
        transport = httpx.ASGITransport(app=create_app(chain.node))
        async with AsyncTallyClient("http://node", transport=transport) as client:
            return await client.status(), await client.history("BOND")

    status, history = asyncio.run(main())
    assert status.height == 1 and history[0].to == chain.addr("alice")


def test_the_sdk_needs_neither_the_server_nor_the_node() -> None:
    """A client installs httpx and pydantic, not FastAPI or the node's storage."""
    import subprocess
    import sys

    probe = ("import sys, tally.sdk; "
             "assert not {'fastapi', 'starlette', 'tally.node', 'tally.api.app'} "
             "& set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True)
