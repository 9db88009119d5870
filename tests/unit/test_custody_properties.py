"""Custody invariants over random operation sequences (hypothesis).

Runs the real executor over an in-memory committed state, one transaction per block,
and after every step checks what users rely on:
* quantities are conserved: per asset, units held add up to the supply;
* pledged and frozen units never move: 0 <= pledged + frozen <= held, and the open
  pledge and freeze records account for them exactly;
* only the controller or its appointed agent moves units (or the pledgee, enforcing);
* a failed operation changes nothing but the sender's nonce;
* history is append-only: each new log is consistent with the previous one.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tally import tx as txmod
from tally.crypto import get_suite
from tally.exec.executor import Executor, genesis_writes, nonce_key
from tally.exec.state import BlockState
from tally.genesis import make_genesis
from tally.keys import generate
from tally.ledger import encode_event_leaf
from tally.log.merkle import verify_consistency
from tally.log.tree import DictNodeStore, MerkleLog

SUITE = get_suite("intl")
ACTORS = [generate(f"a{i}", "intl") for i in range(4)]
ISSUER = generate("issuer", "intl")
CUSTODIAN = generate("custodian", "intl")
ALL = [*ACTORS, ISSUER, CUSTODIAN]
VALIDATOR = generate("v", "intl")
GENESIS = make_genesis("prop", SUITE, [("v", VALIDATOR.key)],
                       {ISSUER.address: ["issuer"], CUSTODIAN.address: ["custodian"]}, 0)
ASSETS = ["A", "B"]

op = st.one_of(
    st.tuples(st.just("issue"), st.sampled_from(ASSETS), st.integers(0, 3),
              st.integers(1, 1000)),
    st.tuples(st.just("transfer"), st.integers(0, 5), st.sampled_from(ASSETS),
              st.integers(0, 3), st.integers(1, 400), st.integers(0, 3)),
    st.tuples(st.just("pledge"), st.integers(0, 3), st.sampled_from(ASSETS),
              st.integers(0, 3), st.integers(1, 400)),
    st.tuples(st.just("release"), st.integers(0, 5), st.integers(0, 20)),
    st.tuples(st.just("enforce"), st.integers(0, 5), st.integers(0, 20)),
    st.tuples(st.just("freeze"), st.integers(0, 5), st.sampled_from(ASSETS),
              st.integers(0, 3), st.integers(1, 400)),
    st.tuples(st.just("unfreeze"), st.integers(0, 5), st.integers(0, 20)),
    st.tuples(st.just("redeem"), st.integers(0, 3), st.sampled_from(ASSETS),
              st.integers(1, 400)),
    st.tuples(st.just("agent"), st.integers(0, 3), st.integers(0, 3)),
)


class Model:
    def __init__(self) -> None:
        self.executor = Executor(GENESIS)
        self.committed: dict[bytes, Any] = dict(genesis_writes(GENESIS))
        self.height = 0
        self.log = MerkleLog(SUITE.hash, DictNodeStore())
        self.pledges: list[str] = []
        self.freezes: list[str] = []

    def nonce(self, key) -> int:
        return self.committed.get(nonce_key(key.address), 0)

    def run(self, key, kind: str, payload: dict[str, Any]):
        raw = txmod.sign(key.key, chain="prop", nonce=self.nonce(key), expiry=10**6, kind=kind,
                         payload=payload)
        tx = self.executor.decode(raw)
        self.height += 1
        state = BlockState(self.committed.get)
        before = dict(self.committed)
        (outcome,) = self.executor.execute_block(state, height=self.height, time_ms=self.height,
                                                 txs=[tx]).txs
        for key_bytes, value in state.decoded_changes().items():
            if value is None:
                self.committed.pop(key_bytes, None)
            else:
                self.committed[key_bytes] = value
        if not outcome.ok:  # nothing but the nonce may change
            changed = {k for k in set(before) | set(self.committed)
                       if before.get(k) != self.committed.get(k)}
            assert changed <= {nonce_key(key.address)}, (outcome.code, changed)
        old_size, old_root = self.log.size, self.log.root()
        for i, ev in enumerate(outcome.events):
            self.log.append(encode_event_leaf(ev, height=self.height, tx_id=tx.id, index=i,
                                              time_ms=self.height, details_hash=None))
        if old_size:
            verify_consistency(SUITE.hash, old_size, self.log.size,
                               self.log.consistency_proof(old_size, self.log.size), old_root,
                               self.log.root())
        return outcome, tx

    def holdings(self, asset: str) -> dict[str, dict[str, int]]:
        prefix = f"holding/{asset}/".encode()
        return {k[len(prefix):].decode(): v for k, v in self.committed.items()
                if k.startswith(prefix)}

    def check_invariants(self) -> None:
        for asset in ASSETS:
            record = self.committed.get(f"asset/{asset}".encode())
            holdings = self.holdings(asset)
            if record is None:
                assert holdings == {}
                continue
            assert sum(h["q"] for h in holdings.values()) == record["supply"]
            for holder, h in holdings.items():
                assert h["p"] >= 0 and h["f"] >= 0 and h["p"] + h["f"] <= h["q"]
                pledged = sum(p["quantity"] for k, p in self.committed.items()
                              if k.startswith(b"pledge/") and p["asset"] == asset
                              and p["pledgor"] == holder)
                frozen = sum(f["quantity"] for k, f in self.committed.items()
                             if k.startswith(b"freeze/") and f["asset"] == asset
                             and f["holder"] == holder)
                assert (pledged, frozen) == (h["p"], h["f"])

    def free(self, asset: str, holder: str) -> int:
        h = self.holdings(asset).get(holder, {"q": 0, "p": 0, "f": 0})
        return h["q"] - h["p"] - h["f"]

    def is_agent(self, controller: str, agent: str) -> bool:
        return f"agent/{controller}/{agent}".encode() in self.committed


@settings(max_examples=60, deadline=None)
@given(st.lists(op, min_size=1, max_size=40))
def test_custody_invariants_hold_for_any_sequence(ops: list[tuple]) -> None:
    m = Model()
    for item in ops:
        kind = item[0]
        if kind == "issue":
            _, asset, to, qty = item
            m.run(ISSUER, "asset.issue", {"asset": asset, "class": "security", "name": asset,
                                          "quantity": qty, "to": ACTORS[to].address})
        elif kind == "transfer":
            _, sender, asset, holder, qty, to = item
            actor, owner = ALL[sender], ACTORS[holder]
            free_before = m.free(asset, owner.address)
            allowed = actor.address == owner.address or m.is_agent(owner.address, actor.address)
            outcome, _ = m.run(actor, "custody.transfer", {
                "asset": asset, "to": ACTORS[to].address, "quantity": qty,
                "holder": owner.address})
            if outcome.ok:
                assert allowed, "units moved without the controller's authority"
                assert qty <= free_before, "pledged or frozen units moved"
            elif allowed and qty <= free_before and to != holder and \
                    f"asset/{asset}".encode() in m.committed and \
                    m.committed[f"asset/{asset}".encode()]["status"] == "active":
                raise AssertionError(f"a valid transfer was refused: {outcome.code}")
        elif kind == "pledge":
            _, sender, asset, pledgee, qty = item
            free_before = m.free(asset, ACTORS[sender].address)
            outcome, tx = m.run(ACTORS[sender], "custody.pledge", {
                "asset": asset, "pledgee": ACTORS[pledgee].address, "quantity": qty})
            if outcome.ok:
                assert qty <= free_before
                m.pledges.append(tx.id.hex())
        elif kind in ("release", "enforce"):
            _, sender, which = item
            if m.pledges:
                pledge_id = m.pledges[which % len(m.pledges)]
                record = m.committed.get(f"pledge/{pledge_id}".encode())
                outcome, _ = m.run(ALL[sender], f"custody.{kind}", {"pledge": pledge_id})
                if outcome.ok:
                    assert record is not None and record["pledgee"] == ALL[sender].address
        elif kind == "freeze":
            _, sender, asset, holder, qty = item
            outcome, tx = m.run(ALL[sender], "custody.freeze", {
                "asset": asset, "holder": ACTORS[holder].address, "quantity": qty,
                "reason": "r"})
            if outcome.ok:
                assert ALL[sender] is CUSTODIAN
                m.freezes.append(tx.id.hex())
        elif kind == "unfreeze":
            _, sender, which = item
            if m.freezes:
                outcome, _ = m.run(ALL[sender], "custody.unfreeze",
                                   {"freeze": m.freezes[which % len(m.freezes)]})
                if outcome.ok:
                    assert ALL[sender] is CUSTODIAN
        elif kind == "redeem":
            _, sender, asset, qty = item
            free_before = m.free(asset, ACTORS[sender].address)
            outcome, _ = m.run(ACTORS[sender], "asset.redeem", {"asset": asset, "quantity": qty})
            if outcome.ok:
                assert qty <= free_before
        elif kind == "agent":
            _, controller, agent = item
            m.run(ACTORS[controller], "custody.appoint_agent", {"agent": ACTORS[agent].address})
        m.check_invariants()
