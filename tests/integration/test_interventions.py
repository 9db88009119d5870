"""A regulator's interventions (protocol version 4): an asset frozen whole, units moved on
a court order whose hash is attested in the same transaction; each with a reason code,
allowed by policy to the regulator only, visible in the asset's history and exported as
evidence."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tally.errors import Code, TallyError
from tally.evidence.export import export_bundle
from tally.evidence.verify import verify_bundle
from tests.support.consortium import Consortium
from tests.support.openssl_ca import OpensslPki

ORDER = hashlib.sha256(b"Shanghai Financial Court, order 2026-17").digest()


@pytest.fixture
def c(tmp_path: Path, pki: OpensslPki) -> Iterator[Consortium]:
    chain = Consortium(tmp_path, "intl", pki)
    chain.register("alice")
    chain.register("bob", member="broker")
    chain.issue("BOND", 1000, to="alice")
    yield chain
    chain.stop()


def code_of(c: Consortium, name: str, kind: str, payload: dict) -> str:
    try:
        return c.send(name, kind, payload).code
    except TallyError as exc:
        c._nonces[name] -= 1
        return exc.code


def test_a_frozen_asset_moves_for_nobody_until_unfrozen(c: Consortium) -> None:
    freeze = {"asset": "BOND", "reason_code": "INVESTIGATION", "reason": "case 88"}
    assert code_of(c, "custodian", "asset.freeze", freeze) == Code.UNAUTHORISED
    assert code_of(c, "regulator", "asset.freeze", {**freeze, "reason_code": "BORED"}) == \
        Code.INVALID_PAYLOAD
    c.ok("regulator", "asset.freeze", freeze)
    move = {"asset": "BOND", "to": c.addr("bob"), "quantity": 1}
    refused = c.send("alice", "custody.transfer", move)
    assert refused.code == Code.ASSET_FROZEN and "INVESTIGATION" in refused.message
    c.ok("regulator", "asset.unfreeze", {**freeze, "reason": "case closed"})
    c.ok("alice", "custody.transfer", move)
    history = [e["type"] for e in c.node.reader.history("BOND")]
    assert history[-3:] == ["asset.freeze", "asset.unfreeze", "custody.transfer"]


def test_a_court_order_moves_units_and_is_attested(c: Consortium) -> None:
    order = {"asset": "BOND", "holder": c.addr("alice"), "to": c.addr("bob"),
             "quantity": 300, "order_hash": ORDER, "reason_code": "COURT_ORDER",
             "reason": "enforcement of judgment (2026) Hu 74 Min Chu 17"}
    assert code_of(c, "admin", "custody.force_transfer", order) == Code.UNAUTHORISED
    too_much = c.send("regulator", "custody.force_transfer", {**order, "quantity": 5000})
    assert too_much.code == Code.INSUFFICIENT_UNITS
    receipt = c.ok("regulator", "custody.force_transfer", order)
    assert c.holding("BOND", "bob")["q"] == 300 and c.holding("BOND", "alice")["q"] == 700
    attested = c.node.reader.value(f"doc/{ORDER.hex()}/{c.addr('regulator')}".encode())
    assert attested is not None and attested["asset"] == "BOND"
    c.issue("LATER")  # a later block, so the event's checkpoint exists
    bundle = export_bundle(c.node.reader, receipt.events[0])
    verdict = verify_bundle(bundle, genesis_hash=c.genesis.hash.hex())
    assert verdict.event["type"] == "custody.force_transfer"
    assert verdict.event["data"] == ORDER.hex()
    assert verdict.event["details"]["reason_code"] == "COURT_ORDER"
    assert "signed by account " + c.addr("regulator") in verdict.facts[0]


def test_the_committee_can_give_interventions_to_another_role(c: Consortium) -> None:
    c.vote_through("admin", "policy.set", resource="tx:asset.freeze",
                   allow={"role": "custodian"})
    c.ok("custodian", "asset.freeze", {"asset": "BOND", "reason_code": "OTHER",
                                       "reason": "custodian's hold"})
    assert code_of(c, "regulator", "asset.freeze", {
        "asset": "BOND", "reason_code": "OTHER", "reason": "x"}) == Code.UNAUTHORISED


def test_the_regulator_intervenes_from_the_command_line(c: Consortium, tmp_path: Path) -> None:
    """``tally supervise freeze | unfreeze | force-transfer | sandbox`` against a served
    node: each is a transaction signed with the regulator's key file; a bad reason code
    is refused (exit 1) and changes nothing."""
    from typer.testing import CliRunner

    from tally.cli.main import app
    from tally.keys import save
    from tests.support.api import serve

    key = tmp_path / "regulator.json"
    save(key, c.keys["regulator"])
    order = tmp_path / "judgment.txt"
    order.write_text("(2026) Hu 74 Min Chu 17: transfer 5 units")

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, ["supervise", *args, "--url", url],
                                    env={"COLUMNS": "200"})
        return result.exit_code, result.output

    with serve(c.node) as url:
        code, out = run("freeze", "BOND", "--key", str(key), "--reason-code", "BORED",
                        "--reason", "x")
        assert code == 1 and "INVALID_PAYLOAD" in out
        assert c.node.reader.value(b"asset/BOND")["status"] == "active"
        assert run("freeze", "BOND", "--key", str(key), "--reason-code", "AML",
                   "--reason", "case 9")[0] == 0
        assert c.node.reader.value(b"asset/BOND")["status"] == "frozen"
        assert run("unfreeze", "BOND", "--key", str(key), "--reason-code", "AML",
                   "--reason", "closed")[0] == 0
        code, out = run("force-transfer", "BOND", "--key", str(key), "--holder",
                        c.addr("alice"), "--to", c.addr("bob"), "--quantity", "5", "--order",
                        str(order), "--reason-code", "COURT_ORDER", "--reason", "judgment 17")
        assert code == 0, out
        assert c.holding("BOND", "bob")["q"] == 5
        assert c.node.reader.value(
            f"doc/{hashlib.sha256(order.read_bytes()).hexdigest()}/{c.addr('regulator')}"
            .encode()) is not None
        code, out = run("sandbox", "nothing", "--key", str(key), "--max-per-call", "1",
                        "--max-total", "1", "--participant", c.addr("alice"),
                        "--end-height", "100000")
        assert code == 1 and "NOT_FOUND" in out  # no such contract: refused when proposed
