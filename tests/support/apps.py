"""A real chain for the contract templates (tally/apps): a solo node whose committee
deploys contracts through governance, signers created on demand by label, and helpers
that send ``contract.call`` transactions and read receipts, holdings and both logs.

The template scenarios (tests/integration/test_apps_*.py) run on it: every call is a signed
transaction in a block, executed by the same executor and custody host functions as
any node's. Labels ("bank", "alice", ...) name accounts; an account gets a key the
first time it signs. The clock is the test's: each block is one second after the
previous one, and :meth:`AppChain.advance_time` jumps ahead.

Setup that needs many transactions goes in one block with :meth:`AppChain.batch`, which
keeps these tests fast (a block costs more than the transactions in it).
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tally import tx as txmod
from tally.crypto import get_suite
from tally.evidence.export import export_bundle, export_commercial_bundle
from tally.evidence.verify import Verdict, verify_bundle
from tally.exec.contracts import contract_address
from tally.genesis import make_genesis
from tally.keys import NamedKey, generate
from tally.node import Node
from tally.protocol.receipt import Receipt
from tally.protocol.versions import IDENTITY

CHAIN = "apps-test"
GENESIS_TIME = 1_767_225_600_000  # 2026-01-01T00:00:00Z
#: The committee: a deploy is proposed by the first member and applies when the second
#: approves (more than half of two).
COMMITTEE = ("admin", "admin2")


class CallFailed(Exception):
    """A transaction (a call, or a deploy's approval) failed: ``code`` and ``message``
    are its receipt's."""

    def __init__(self, receipt: Receipt) -> None:
        super().__init__(f"{receipt.code}: {receipt.message}")
        self.receipt = receipt
        self.code = receipt.code
        self.message = receipt.message


@dataclass(frozen=True)
class Emitted:
    """An event of either log: ``source`` is the contract's name for the commercial log,
    ``"custody"`` for the custody log (whose ``data`` is the event's fields: ``asset``,
    ``from``, ``to``, ``quantity``, ``details``)."""

    source: str
    name: str
    data: Any
    tx: str
    log_index: int


class AppChain:
    """A running solo node with a two-member committee and on-demand signers."""

    def __init__(self, tmp: Path, suite_name: str = "intl") -> None:
        self.suite_name = suite_name
        self.keys: dict[str, NamedKey] = {}
        self.labels: dict[str, str] = {}  # address -> label
        validator = generate("validator-0", suite_name)
        roles = {self.account(name): ["admin"] for name in COMMITTEE}
        self.genesis = make_genesis(CHAIN, get_suite(suite_name),
                                    [(validator.name, validator.key)], roles, GENESIS_TIME)
        self.time_ms = GENESIS_TIME
        self.node = Node(tmp / "node", self.genesis, validator, clock_ms=self._clock)
        self.node.start()
        self._nonces: dict[str, int] = {}
        self._batch: list[bytes] | None = None

    # --- accounts, time -------------------------------------------------------------------

    def _clock(self) -> int:
        self.time_ms += 1000
        return self.time_ms

    def advance_time(self, ms: int) -> None:
        """Commit a block ``ms`` (plus one second) after the last one, so that calls and
        queries from now on see the new time. The solo engine makes no empty blocks: the
        block holds a transaction of the "clock" account that is refused (revoking an
        agent it never appointed), which changes nothing but that account's nonce."""
        self.time_ms += ms
        receipt = self.send("clock", "custody.revoke_agent", {"agent": "0" * 40})
        assert receipt.code == "NOT_FOUND", receipt

    def account(self, label: str) -> str:
        """The address of the account named ``label`` (its key made on first use)."""
        key = self.keys.get(label)
        if key is None:
            key = self.keys[label] = generate(label, self.suite_name)
            self.labels[key.address] = label
        return key.address

    @staticmethod
    def contract_address(name: str) -> str:
        return contract_address(name)

    # --- transactions ---------------------------------------------------------------------

    def sign(self, label: str, kind: str, payload: dict[str, Any], tier: int = 1) -> bytes:
        """Sign as the account labelled ``label`` (or with that address)."""
        label = self.labels.get(label, label)
        self.account(label)
        nonce = self._nonces.get(label, 0)
        self._nonces[label] = nonce + 1
        return txmod.sign(self.keys[label].key, chain=CHAIN, nonce=nonce,
                          expiry=self.node.ledger.height + 100, kind=kind, payload=payload,
                          tier=tier)

    def send(self, label: str, kind: str, payload: dict[str, Any], tier: int = 1) -> Receipt:
        return self._submit(self.sign(label, kind, payload, tier))

    def _submit(self, raw: bytes) -> Receipt:
        if self._batch is not None:
            self._batch.append(raw)
            return None  # type: ignore[return-value]  # settled when the batch ends
        return self.node.submit_and_wait(raw, timeout=30)

    def batch(self) -> _Batch:
        """``with chain.batch(): ...``: the transactions sent inside go in together (one
        block, as a rule) and must all succeed; calls inside return None."""
        return _Batch(self)

    def ok(self, label: str, kind: str, payload: dict[str, Any]) -> Receipt:
        receipt = self.send(label, kind, payload)
        if receipt is not None and not receipt.ok:
            raise CallFailed(receipt)
        return receipt

    def deploy(self, name: str, source: str, *args: Any) -> Receipt:
        """Deploy through governance: the first committee member proposes
        ``contract.deploy``, the second approves, and the deploy runs (``init`` with the
        proposer as caller). Raises :class:`CallFailed` if the proposal or the deploy
        fails."""
        raw = self.sign(COMMITTEE[0], "gov.propose", {
            "action": "contract.deploy", "name": name, "source": source, "args": list(args)})
        proposed = self._submit(raw)
        if proposed is not None and not proposed.ok:
            raise CallFailed(proposed)
        proposal = txmod.decode(raw, max_size=len(raw)).id_hex  # its transaction's id
        return self.ok(COMMITTEE[1], "gov.approve", {"proposal": proposal})

    def grant_issuer(self, contract: str) -> None:
        """Role ``issuer`` for a contract's custody account, granted by the committee."""
        self.grant(contract_address(contract), "issuer")

    def grant(self, account: str, role: str) -> None:
        """Give ``account`` a role: from protocol version 4 by a committee proposal (the
        first member proposes, the second approves), before it by an admin's
        ``role.grant``."""
        if self.genesis.protocol_version < IDENTITY:
            self.ok(COMMITTEE[0], "role.grant", {"account": account, "role": role})
            return
        raw = self.sign(COMMITTEE[0], "gov.propose", {
            "action": "role.grant", "account": account, "role": role})
        proposed = self._submit(raw)
        if proposed is not None and not proposed.ok:
            raise CallFailed(proposed)
        self.ok(COMMITTEE[1], "gov.approve",
                {"proposal": txmod.decode(raw, max_size=len(raw)).id_hex})

    def receipt(self, contract: str, method: str, *args: Any, caller: str) -> Receipt:
        """Send a ``contract.call`` signed by ``caller`` (a label or an address)."""
        return self.send(caller, "contract.call",
                         {"contract": contract, "method": method, "args": list(args)}, tier=2)

    def call(self, contract: str, method: str, *args: Any, caller: str) -> Any:
        """The call's return value; :class:`CallFailed` if it failed."""
        receipt = self.receipt(contract, method, *args, caller=caller)
        if receipt is None:  # in a batch
            return None
        if not receipt.ok:
            raise CallFailed(receipt)
        return receipt.result

    def fails(self, contract: str, method: str, *args: Any, caller: str) -> CallFailed:
        """Call and expect a failure; returns it for the test to inspect."""
        with pytest.raises(CallFailed) as info:
            self.call(contract, method, *args, caller=caller)
        return info.value

    # --- reads ----------------------------------------------------------------------------

    def query(self, contract: str, method: str, *args: Any) -> Any:
        return self.node.reader.contract_query(contract, method, list(args))

    def holding(self, asset: str, holder: str) -> dict[str, int]:
        return dict(self.node.reader.holding(asset, holder))

    def custody_events(self) -> list[Emitted]:
        return [Emitted("custody", e["type"], {k: e.get(k) for k in
                                               ("asset", "from", "to", "quantity", "details")},
                        e["tx"], e["log_index"]) for e in self.node.reader.events(limit=100_000)]

    def contract_events(self) -> list[Emitted]:
        return [Emitted(e["contract"], e["name"], e["data"], e["tx"], e["log_index"])
                for e in self.node.reader.commercial_events(limit=100_000)]

    def verify(self, event: Emitted) -> Verdict:
        """Export the event's evidence bundle (custody or commercial log) and verify it
        against this chain's genesis hash, as an outside verifier would."""
        bundle = (export_bundle(self.node.reader, event.log_index) if event.source == "custody"
                  else export_commercial_bundle(self.node.reader, event.log_index))
        return verify_bundle(bundle, genesis_hash=self.genesis.hash.hex())

    def events_named(self, name: str, source: str | None = None) -> list[Emitted]:
        """Events called ``name``, oldest first: custody events when ``source`` is
        ``"custody"``, else contract events (of contract ``source`` if given)."""
        pool = self.custody_events() if source == "custody" else self.contract_events()
        return [e for e in pool if e.name == name and (source is None or e.source == source)]

    def events_of(self, receipt: Receipt) -> tuple[list[Emitted], list[Emitted]]:
        """The custody and contract events of one transaction, each in log order."""
        return ([e for e in self.custody_events() if e.tx == receipt.tx],
                [e for e in self.contract_events() if e.tx == receipt.tx])

    def state(self) -> dict[bytes, bytes]:
        """Every key of committed state except the nonces (which every transaction that
        runs advances, failed or not): to show a failed call changed nothing else."""
        rows = self.node.store.reader().execute("SELECT key, value FROM kv").fetchall()
        return {bytes(k): bytes(v) for k, v in rows if not bytes(k).startswith(b"nonce/")}

    def stop(self) -> None:
        self.node.stop()

    def stop_in_background(self) -> None:
        """Stop the node on a thread: a stop waits for the engine's next poll (about 50
        ms), which the next test need not wait for. Joined at exit."""
        thread = threading.Thread(target=self.node.stop, name="apps-test-stop")
        thread.start()
        _STOPPING.append(thread)


_STOPPING: list[threading.Thread] = []


@atexit.register
def _join_stopping() -> None:
    for thread in _STOPPING:
        thread.join(10)


def chain_fixture() -> Any:
    """A test module's ``env`` fixture (``env = chain_fixture()``): a fresh
    :class:`AppChain` per test."""

    @pytest.fixture(name="env")
    def make_chain(tmp_path: Path) -> Iterator[AppChain]:
        chain = AppChain(tmp_path)
        yield chain
        chain.stop_in_background()

    return make_chain


class _Batch:
    """A batch inside a batch adds to the outer one."""

    def __init__(self, chain: AppChain) -> None:
        self.chain = chain
        self.outer = chain._batch is not None

    def __enter__(self) -> AppChain:
        if not self.outer:
            self.chain._batch = []
        return self.chain

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if self.outer:
            return
        raws, self.chain._batch = self.chain._batch or [], None
        if exc_type is not None or not raws:
            return
        results = self.chain.node.submit_many(raws, wait=True)
        for result in results:
            if not isinstance(result, Receipt) or not result.ok:
                raise AssertionError(f"a transaction of the batch failed: {result}")
