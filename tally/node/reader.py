"""The chain reader: everything a node's clients read, from its committed blocks only.

A :class:`ChainReader` reads a :class:`~tally.state.store.Store` through the store's
read connections (one per thread, never the writer's), so it sees the last committed
block and nothing the engine is still working on. It serves the API, the evidence
exporter, the metrics and the CLI; none of them touches the store. Reads that must agree
with one another (a proof and the checkpoint it is checked against) run inside one
:meth:`ChainReader.snapshot`.

What it offers, by family:

* status facts of the chain (:meth:`~ChainReader.status`; the node adds its engine's);
* blocks (:meth:`~ChainReader.block`, typed :class:`~tally.protocol.header.BlockHeader`
  through :meth:`~ChainReader.header`), transactions and their
  :class:`~tally.protocol.receipt.Receipt`;
* events of the custody log and of the commercial log;
* checkpoints with every collected cosignature (:meth:`~ChainReader.checkpoint_note`);
* log views, inclusion and consistency proofs (RFC 9162);
* state values and state proofs; validator sets, and validator updates each proven to a
  quorum-signed checkpoint (:class:`ValidatorProofs`);
* contracts: record, source, and @view queries against the committed state.
"""

from __future__ import annotations

import base64
import functools
import queue
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tally import codec
from tally import tx as txmod
from tally.errors import Code, NotFound, TallyError
from tally.evidence.verify import (
    EvidenceError,
    ValidatorHistory,
    binds_genesis,
    genesis_validator_docs,
    jsonable,
)
from tally.exec.custody import asset_key, holding_key
from tally.exec.executor import nonce_key
from tally.exec.governance import VALIDATORS_KEY
from tally.exec.roles import role_key
from tally.genesis import Genesis
from tally.ledger import LEAF_TABLES
from tally.log.checkpoint import with_cosignatures
from tally.log.merkle import leaf_hash
from tally.log.tree import MerkleLog
from tally.protocol.header import BlockHeader
from tally.protocol.receipt import Receipt
from tally.protocol.versions import IDENTITY
from tally.state.store import BlockRow, EventRow, Store, TxRow
from tally.state.trie import StateTrie

__all__ = ["ChainReader", "ValidatorProofs", "event_to_dict", "jsonable", "receipt_of_row"]

#: How many blocks past the first one covering an event to look for a quorum checkpoint.
SEARCH_WINDOW = 64
#: How many records one identity read returns at most (each scan is bounded).
MAX_MEMBERS = 1000
MAX_CLAIMS = 256
MAX_PROPOSALS = 256


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def receipt_of_row(row: TxRow) -> Receipt:
    """The receipt of a stored transaction row."""
    events = [] if row.first_event is None else list(
        range(row.first_event, row.first_event + row.event_count))
    return Receipt(row.id.hex(), row.height, row.position, row.code, row.message, events,
                   None if row.result is None else jsonable(codec.decode(row.result)))


def event_to_dict(row: EventRow) -> dict[str, Any]:
    leaf = codec.decode(row.leaf)
    out = jsonable(leaf)
    out["log_index"] = row.index
    out["details"] = jsonable(codec.decode(row.details)) if row.details else {}
    return out


class _ReadLogNodes:
    """The log's nodes as readers see them (leaf hashes come from the event rows)."""

    def __init__(self, store: Store, hash_fn: Any, table: str = "log_nodes") -> None:
        self.store = store
        self.hash_fn = hash_fn
        self.table = table
        self.events = LEAF_TABLES[table]

    def get(self, level: int, index: int) -> bytes | None:
        if level == 0:
            leaf = self.store.read_event_leaf(index, self.events)
            return None if leaf is None else leaf_hash(self.hash_fn, leaf)
        return self.store.read_log_node(level, index, self.table)

    def put_many(self, items: list) -> None:  # pragma: no cover - reads only
        raise RuntimeError("read-only view of the log")


class _CommittedState:
    """Committed state, decoded, for read-only contract queries."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, key: bytes) -> Any | None:
        raw = self.store.read_value(key)
        return None if raw is None else codec.decode(raw)


class _ReadTrieNodes:
    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, path: bytes) -> bytes | None:
        return self.store.read_trie_node(path)


class ChainReader:
    """Read-only views of one chain's committed blocks.

    ``decode_tx`` decodes a stored transaction (the node passes its executor's, so the
    chain's size limit applies); ``query_host`` gives the host functions a @view query
    runs with (the node passes its executor's: the contracts' host of the rules in force);
    without it, the reader builds the host of the version its committed state names.
    """

    def __init__(self, store: Store, genesis: Genesis, *,
                 decode_tx: Callable[[bytes], txmod.Transaction] | None = None,
                 query_host: Callable[[], Any] | None = None) -> None:
        self._store = store
        self.genesis = genesis
        self.suite = genesis.suite
        self._decode_tx = decode_tx or (
            lambda raw: txmod.decode(raw, max_size=genesis.params.max_tx_bytes))
        self._query_host = query_host or self._committed_rules_host
        #: Idle VMs for @view queries. A VM runs one execution at a time, so each query
        #: takes one (a new one if none is idle) and gives it back: queries run side by
        #: side, as many as their callers allow (the API bounds them: tally.api.queries).
        self._query_vms: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def _committed_rules_host(self) -> Any:
        from tally.exec.rules import rules_for
        from tally.exec.upgrade import current_version

        return rules_for(current_version(_ValueReader(self), self.genesis)).host

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One read transaction: every read inside sees the same committed block."""
        with self._store.snapshot():
            yield

    # --- status and blocks --------------------------------------------------------------

    def latest(self) -> BlockRow | None:
        """The latest committed block's row, or None before the first block."""
        return self._store.latest_block()

    def height(self) -> int:
        latest = self._store.latest_block()
        return latest.height if latest else 0

    def status(self) -> dict[str, Any]:
        """The chain's facts at the latest committed block (the node adds its engine's)."""
        latest = self._store.latest_block()
        header = BlockHeader.decode(latest.header) if latest else None
        return {
            "chain_id": self.genesis.chain_id,
            "suite": self.suite.name,
            "genesis_hash": self.genesis.hash.hex(),
            "height": latest.height if latest else 0,
            "block_hash": latest.hash.hex() if latest else None,
            "log_size": latest.log_size if latest else 0,
            "state_root": (header.state if header else
                           self._store.read_meta("state_root") or b"").hex(),
        }

    def block_row(self, height: int) -> BlockRow | None:
        return self._store.block(height)

    def header(self, height: int) -> BlockHeader:
        row = self._store.block(height)
        if row is None:
            raise NotFound(f"no block at height {height}")
        return BlockHeader.decode(row.header)

    def first_block_covering(self, log_index: int) -> BlockRow | None:
        """The first block whose checkpoint covers custody-log entry ``log_index``."""
        return self._store.first_block_covering(log_index)

    def block_transactions(self, height: int) -> list[TxRow]:
        """The stored transactions of block ``height``, in block order."""
        return self._store.block_txs(height)

    def block(self, height: int) -> dict[str, Any]:
        row = self._store.block(height)
        if row is None:
            raise NotFound(f"no block at height {height}")
        header = BlockHeader.decode(row.header)
        return {
            "height": row.height, "hash": row.hash.hex(), "header": jsonable(header.to_doc()),
            "checkpoint": row.checkpoint,
            "txs": [t.id.hex() for t in self._store.block_txs(height)],
        }

    # --- transactions -------------------------------------------------------------------

    def tx_row(self, tx_id: bytes) -> TxRow | None:
        """A committed transaction's stored row, or None."""
        return self._store.tx(tx_id)

    def receipt(self, tx_id: str) -> Receipt:
        row = self._store.tx(_parse_hex(tx_id, "transaction id"))
        if row is None:
            raise NotFound(f"no committed transaction {tx_id}")
        return receipt_of_row(row)

    def transaction(self, tx_id: str) -> dict[str, Any]:
        row = self._store.tx(_parse_hex(tx_id, "transaction id"))
        if row is None:
            raise NotFound(f"no committed transaction {tx_id}")
        tx = self._decode_tx(row.raw)
        return {
            "id": tx.id_hex, "chain": tx.chain, "suite": tx.suite, "tier": tx.tier,
            "sender": tx.sender, "signer": tx.signer.hex(), "nonce": tx.nonce,
            "expiry": tx.expiry, "kind": tx.kind, "payload": jsonable(tx.payload),
            "signature": tx.signature.hex(), "raw": base64.b64encode(row.raw).decode(),
            "receipt": receipt_of_row(row).to_dict(),
            "events": [event_to_dict(e) for e in self._store.events_of_tx(row.id)],
        }

    # --- events -------------------------------------------------------------------------

    def event(self, index: int) -> EventRow | None:
        """Custody-log entry ``index`` as stored (leaf and details bytes), or None."""
        return self._store.event(index)

    def events(self, after: int = -1, limit: int = 1000) -> list[dict[str, Any]]:
        return [event_to_dict(e) for e in self._store.events_after(after, limit)]

    def history(self, asset: str, after: int = -1, limit: int = 1000) -> list[dict[str, Any]]:
        return [event_to_dict(e) for e in self._store.events_of_asset(asset, after, limit)]

    def commercial_event(self, index: int) -> tuple | None:
        """Commercial-log entry ``index`` as stored: (index, height, tx id, contract, name,
        leaf), or None."""
        return self._store.event2(index)

    def commercial_events(self, after: int = -1, limit: int = 1000,
                          contract: str | None = None) -> list[dict[str, Any]]:
        out = []
        for idx, _height, _tx, _contract, _name, leaf in self._store.events2_after(
                after, limit, contract):
            fields = codec.decode(leaf)
            out.append({"log_index": idx, "contract": fields["contract"],
                        "name": fields["name"], "data": jsonable(codec.decode(fields["data"])),
                        "height": fields["height"], "tx": fields["tx"].hex(),
                        "index": fields["index"], "time": fields["time"]})
        return out

    # --- checkpoints --------------------------------------------------------------------

    def cosignatures(self, height: int) -> dict[str, str]:
        """The cosignature lines stored for block ``height``'s checkpoint, by signer."""
        return self._store.cosignatures(height)

    def witnessed_note(self, height: int, note: str) -> str:
        """``note`` (block ``height``'s checkpoint) with the witnesses' cosignatures this
        node collected for it (tally.witness); verifiers ignore them unless asked."""
        lines = list(self._store.witness_cosignatures(height).values())
        return with_cosignatures(note, lines) if lines else note

    def checkpoint_note(self, height: int) -> str:
        """The signed checkpoint of block ``height``, with every cosignature collected
        (one line per signer, in name order)."""
        row = self._store.block(height)
        if row is None:
            raise NotFound(f"no block at height {height}")
        return with_cosignatures(row.checkpoint, list(self._store.cosignatures(height).values()))

    # --- logs and their proofs ----------------------------------------------------------

    def log_view(self, size: int, table: str = "log_nodes") -> MerkleLog:
        """The custody log (``log_nodes``) or the commercial log (``log2_nodes``) as it
        was at ``size`` entries, read-only."""
        return MerkleLog(self.suite.hash, _ReadLogNodes(self._store, self.suite.hash, table),
                         size=size)

    def commercial_log_view(self, size: int) -> MerkleLog:
        return self.log_view(size, "log2_nodes")

    def commercial_log_size(self) -> int:
        """Entries in the commercial log at the latest committed block."""
        latest = self._store.latest_block()
        return BlockHeader.decode(latest.header).commercial_size if latest else 0

    def inclusion_proof(self, index: int, size: int) -> dict[str, Any]:
        self._check_log_size(size)
        log = self.log_view(size)
        if not 0 <= index < size:
            raise TallyError(f"index {index} is outside a log of size {size}", Code.INVALID_REQUEST)
        return {"index": index, "tree_size": size, "leaf_hash": log.leaf_hash_at(index).hex(),
                "root": log.root(size).hex(),
                "proof": [h.hex() for h in log.inclusion_proof(index, size)]}

    def consistency_proof(self, first: int, second: int) -> dict[str, Any]:
        self._check_log_size(second)
        if first > second:
            raise TallyError("the first size must not exceed the second", Code.INVALID_REQUEST)
        log = self.log_view(second)
        return {"first": first, "second": second, "first_root": log.root(first).hex(),
                "second_root": log.root(second).hex(),
                "proof": [h.hex() for h in log.consistency_proof(first, second)]}

    def _check_log_size(self, size: int) -> None:
        latest = self._store.latest_block()
        committed = latest.log_size if latest else 0
        if size > committed:
            raise TallyError(f"the log has {committed} entries; {size} requested",
                             Code.INVALID_REQUEST)

    # --- state --------------------------------------------------------------------------

    def value(self, key: bytes) -> Any | None:
        raw = self._store.read_value(key)
        return None if raw is None else codec.decode(raw)

    def nonce(self, address: str) -> int:
        """The next nonce the committed state expects from ``address``."""
        return self.value(nonce_key(address)) or 0

    def protocol_version(self) -> int:
        """The protocol version in force after the latest committed block."""
        from tally.exec.upgrade import current_version

        return current_version(_ValueReader(self), self.genesis)

    def admission_nonce(self, address: str) -> int:
        """:meth:`nonce`, for admitting a transaction: from protocol version 4, a sender
        that may not act at all (unregistered, frozen...) is refused here already, so its
        transactions never reach a block (execution refuses them again regardless)."""
        from tally.exec import policy
        from tally.exec.upgrade import current_version

        state = _ValueReader(self)
        if current_version(state, self.genesis) >= IDENTITY:
            policy.admit(state, address)
        return self.nonce(address)

    def asset(self, asset: str) -> dict[str, Any]:
        record = self.value(asset_key(asset))
        if record is None:
            raise NotFound(f"no asset {asset!r}")
        holders = {
            key.decode().rsplit("/", 1)[1]: codec.decode(value)
            for key, value in self._store.read_prefix(f"holding/{asset}/".encode())
        }
        return {"asset": asset, **jsonable(record), "holders": holders}

    def holding(self, asset: str, holder: str) -> dict[str, int]:
        return self.value(holding_key(asset, holder)) or {"q": 0, "p": 0, "f": 0}

    def account(self, address: str) -> dict[str, Any]:
        return {
            "address": address,
            "nonce": self.nonce(address),
            "roles": self.value(role_key(address)) or [],
        }

    def state_proof(self, key: bytes) -> dict[str, Any]:
        """A key's value (or absence) with a proof against the latest signed checkpoint."""
        with self._store.snapshot():
            latest = self._store.latest_block()
            if latest is None:
                raise NotFound("no block has been committed yet")
            header = BlockHeader.decode(latest.header)
            trie = StateTrie(self.suite.hash, _ReadTrieNodes(self._store))
            proof = trie.prove(key)
            raw = self._store.read_value(key)
            updates = ValidatorProofs(self).validator_updates(latest.height)
        return {
            "key": key.decode(errors="replace"), "key_hex": key.hex(),
            "value": jsonable(codec.decode(raw)) if raw is not None else None,
            "value_cbor": raw.hex() if raw is not None else None,
            "state_root": header.state.hex(), "height": latest.height,
            "checkpoint": self.checkpoint_note(latest.height), "proof": proof.to_dict(),
            "validator_updates": updates,
        }

    # --- validators ---------------------------------------------------------------------

    def validators(self) -> list[dict[str, Any]]:
        """The validator set of the committed state (name, keys, power of each)."""
        return self.value(VALIDATORS_KEY) or []

    def validator_update_rows(self, up_to_height: int) -> list[EventRow]:
        """The ``validator.update`` events of blocks up to ``up_to_height``, in log order."""
        return self._store.validator_updates(up_to_height)

    def validator_proofs(self) -> ValidatorProofs:
        """Validator updates and quorum checkpoints, as of the latest committed block."""
        return ValidatorProofs(self)

    # --- contracts (tier 2) -------------------------------------------------------------

    def contract(self, name: str) -> dict[str, Any]:
        from tally.exec.contracts import contract_key

        record = self.value(contract_key(name))
        if record is None:
            raise NotFound(f"no contract {name!r}")
        return {"name": name, **record}

    def contract_source(self, name: str, version: int | None = None) -> str:
        from tally.exec.contracts import contract_source_key

        record = self.contract(name)
        wanted: int = record["version"] if version is None else version
        source = self.value(contract_source_key(name, wanted))
        if source is None:
            raise NotFound(f"contract {name!r} has no version {wanted}")
        return source

    def contract_query(self, name: str, method: str, args: list[Any], *,
                       steps: int | None = None) -> Any:
        """Run a @view method against the last committed block (no transaction), within
        ``steps`` VM steps (None: the VM's full budget, as a transaction gets)."""
        from tally.exec.contracts import StateStorage, vm_error_to_tally
        from tally.vm import VM, Context, VMError

        self.contract(name)
        latest = self._store.latest_block()
        height, time_ms = (0, 0) if latest is None else (latest.height,
                                                         BlockHeader.decode(latest.header).time)
        try:
            vm = self._query_vms.get_nowait()
        except queue.Empty:
            vm = VM()
        try:
            result = vm.query(
                name, method, args, storage=StateStorage(_CommittedState(self._store)),
                ctx=Context("query", height, time_ms, b"\0" * 32),
                host=self._query_host(), steps=steps)
        except VMError as exc:
            raise vm_error_to_tally(exc) from None
        finally:
            self._query_vms.put(vm)
        return result.return_value

    # --- identities and governance (protocol version 4) ----------------------------------

    def _state(self) -> _ValueReader:
        return _ValueReader(self)

    def _latest_time(self) -> tuple[int, int]:
        """(height, block time in ms) of the latest committed block; (0, genesis time)."""
        latest = self._store.latest_block()
        if latest is None:
            return 0, self.genesis.time_ms
        return latest.height, BlockHeader.decode(latest.header).time

    def members(self, limit: int = MAX_MEMBERS) -> list[dict[str, Any]]:
        """Members (institutions) in id order, at most ``limit``."""
        return [_member_doc(codec.decode(raw))
                for _key, raw in self._store.read_prefix(b"member/", limit)]

    def member(self, member_id: str) -> dict[str, Any]:
        """A member's record, its CA certificates as PEM, and its status."""
        from tally.exec import registry
        from tally.identity.certs import pem

        check_member_id(member_id)
        with self.snapshot():
            record = self.value(registry.member_key(member_id))
            if record is None:
                raise NotFound(f"no member {member_id!r}")
            cas = []
            for fingerprint in record["cas"]:
                ca = self.value(registry.ca_key(fingerprint)) or {}
                cas.append({"fingerprint": fingerprint,
                            "pem": pem(ca["der"]) if "der" in ca else None})
        return _member_doc(record) | {"ca_certificates": cas}

    def identity(self, address: str) -> dict[str, Any]:
        """Who a registered account is (never the person's data: the commitment to it),
        and whether it may act now (:class:`tally.exec.registry.Subject`)."""
        from tally.exec.registry import Subject, account

        check_address(address)
        with self.snapshot():
            state = self._state()
            record = account(state, address)
            if record is None:
                raise NotFound(f"account {address} is not registered")
            who = Subject.of(state, address)
        out = {"address": address, "member": record["member"], "kyc": record["kyc"],
               "status": record["status"], "commitment": record["commitment"],
               "key": record["key"], "issuer": record.get("issuer", ""),
               "serial": record.get("serial", 0), "height": record["height"],
               "roles": list(who.roles), "active": who.active, "why_not": who.why_not}
        for link in ("predecessor", "successor"):
            if link in record:
                out[link] = record[link]
        return out

    def claims(self, address: str, limit: int = MAX_CLAIMS) -> dict[str, Any]:
        """The claims an account holds, each with whether it counts at the latest
        block's time (:func:`tally.exec.claims.valid_claim`), and why not."""
        from tally.exec.claims import trusted_issuers, valid_claim

        check_address(address)
        with self.snapshot():
            state = self._state()
            height, time_ms = self._latest_time()
            prefix = f"claim/{address}/".encode()
            out = []
            for key, raw in self._store.read_prefix(prefix, limit):
                topic = key[len(prefix):].decode()
                claim = codec.decode(raw)
                expires = claim.get("expires_ms", 0)
                expired = bool(expires) and time_ms >= expires
                trusted = claim["issuer"] in trusted_issuers(state, topic)
                valid = valid_claim(state, address, topic, time_ms) is not None
                out.append({"topic": topic, "value": claim["value"],
                            "issuer": claim["issuer"], "height": claim["height"],
                            "expires_ms": expires, "expired": expired, "trusted": trusted,
                            "valid": valid})
        return {"address": address, "height": height, "time": time_ms, "claims": out}

    def proposals(self, status: str = "open", limit: int = MAX_PROPOSALS
                  ) -> list[dict[str, Any]]:
        """Proposals as of the latest height: the open ones (``proposals/open``; one past
        its expiry reads ``expired`` until the next committee transaction closes it), or
        ``all`` of them in id order, at most ``limit``."""
        from tally.exec.committee import open_proposals, proposal_key

        if status not in ("open", "all"):
            raise TallyError("status must be open or all", Code.INVALID_REQUEST)
        with self.snapshot():
            state = self._state()
            if status == "open":
                rows = [(i, self.value(proposal_key(i))) for i in open_proposals(state)[:limit]]
            else:
                rows = [(key.decode()[len("proposal/"):], codec.decode(raw))
                        for key, raw in self._store.read_prefix(b"proposal/", limit)]
            return [self._proposal_doc(state, i, p) for i, p in rows if p is not None]

    def proposal(self, proposal_id: str) -> dict[str, Any]:
        from tally.exec.committee import proposal_key

        check_proposal_id(proposal_id)
        with self.snapshot():
            record = self.value(proposal_key(proposal_id))
            if record is None:
                raise NotFound(f"no proposal {proposal_id}")
            return self._proposal_doc(self._state(), proposal_id, record)

    def _proposal_doc(self, state: _ValueReader, proposal_id: str, record: dict[str, Any]
                      ) -> dict[str, Any]:
        from tally.exec.committee import status_at, tally_votes
        from tally.exec.policy import vote_policy

        height = self.height()
        closed = record["status"] != "open"
        return {"id": proposal_id, "action": record["action"], "args": jsonable(record["args"]),
                "proposer": record["proposer"], "height": record["height"],
                "expires": record["expires"], "votes": dict(record["votes"]),
                "status": status_at(record, height), "as_of": height,
                # a closed proposal keeps the tally of its close; an open one counts now
                "tally": record.get("tally") or tally_votes(state, record),
                "vote_policy": None if closed else vote_policy(state, record["action"])}

    def policy(self, resource: str) -> dict[str, Any]:
        """A resource's effective policy: the stored record, or the default."""
        from tally.exec import policy

        resource = check_resource(resource)
        with self.snapshot():
            state = self._state()
            stored = self.value(policy.policy_key(resource)) is not None
            if resource.startswith("gov:"):
                action = resource[4:]
                if action not in self._actions():
                    raise NotFound(f"no committee action {action!r}")
                return {"resource": resource, "kind": "vote", "stored": stored,
                        "record": policy.vote_policy(state, action)}
            record = policy.signer_record(state, resource)
        return {"resource": resource, "kind": "signer", "stored": stored,
                "record": jsonable(record), "describe": policy.describe(record["allow"])}

    def may(self, address: str, resource: str) -> dict[str, Any]:
        """May ``address`` act on ``resource`` now (:func:`tally.exec.policy.may`)?"""
        from tally.exec import policy

        check_address(address)
        resource = check_resource(resource)
        if resource.startswith("gov:"):
            raise TallyError("may answers for tx: and call: resources; a gov: resource "
                             "holds a vote policy (GET /v1/policies/gov:<action>)",
                             Code.INVALID_REQUEST)
        with self.snapshot():
            verdict = policy.may(self._state(), address, resource)
        return {"account": address, "resource": resource, "allowed": verdict.allowed,
                "reason": verdict.reason}

    def committee(self) -> dict[str, Any]:
        """The committee's seats (weights, whether each may vote now), their total
        weight, and the vote policy of every committee action."""
        from tally.exec import policy
        from tally.exec.registry import Subject, seats

        with self.snapshot():
            state = self._state()
            held = seats(state)
            return {
                "seats": [{"account": a, "weight": w, "active": Subject.of(state, a).active}
                          for a, w in sorted(held.items())],
                "total_weight": sum(held.values()),
                "actions": {a: policy.vote_policy(state, a) for a in sorted(self._actions())},
                "height": self.height()}

    def _actions(self) -> tuple[str, ...]:
        from tally.exec.upgrade import current_version

        return _committee_actions(current_version(self._state(), self.genesis))



class ValidatorProofs:
    """As of the latest committed block: every validator-set change since genesis, each
    with an inclusion proof to a checkpoint signed by a quorum of the validators of its
    time, and the search for such checkpoints. Evidence bundles and state proofs carry
    these, so that a verifier holding only the genesis can follow the validator set.

    Build it inside :meth:`ChainReader.snapshot` when its answers must agree with other
    reads."""

    def __init__(self, reader: ChainReader) -> None:
        self.reader = reader
        latest = reader.latest()
        if latest is None:
            raise NotFound("no block has been committed yet")
        self.latest = latest
        self.log: MerkleLog = reader.log_view(latest.log_size)
        self.update_rows = reader.validator_update_rows(latest.height)
        genesis = reader.genesis
        self.history = ValidatorHistory(genesis_validator_docs(genesis.to_doc()), reader.suite,
                                        genesis.chain_id, genesis.hash,
                                        binds_genesis(genesis.to_doc()))
        self.history.updates = [(row.height, codec.decode(row.details))
                                for row in self.update_rows]

    def quorum_note(self, height: int) -> str | None:
        """Block ``height``'s checkpoint if a quorum of its validators signed it."""
        note = self.reader.checkpoint_note(height)
        try:
            self.history.check(note)
        except EvidenceError:
            return None
        return note

    def first_quorum_checkpoint(self, log_index: int, first: BlockRow | None = None
                                ) -> tuple[BlockRow, str]:
        first = first or self.reader.first_block_covering(log_index)
        if first is None:
            raise NotFound(f"no checkpoint covers event {log_index} yet")
        for height in range(first.height, min(first.height + SEARCH_WINDOW,
                                              self.latest.height) + 1):
            note = self.quorum_note(height)
            if note is not None:
                return self.reader.block_row(height), note  # type: ignore[return-value]
        raise TallyError(f"no checkpoint covering event {log_index} has a quorum of "
                         "cosignatures yet; retry shortly", Code.UNAVAILABLE)

    def latest_quorum_checkpoint(self) -> tuple[BlockRow, str] | None:
        for height in range(self.latest.height, max(0, self.latest.height - SEARCH_WINDOW), -1):
            note = self.quorum_note(height)
            if note is not None:
                return self.reader.block_row(height), note  # type: ignore[return-value]
        return None

    def inclusion(self, index: int, size: int, log: MerkleLog | None = None) -> dict[str, Any]:
        log = log or self.log
        return {"tree_size": size,
                "proof": [b64(h) for h in log.inclusion_proof(index, size)]}

    def validator_updates(self, up_to_height: int) -> list[dict[str, Any]]:
        out = []
        for row in self.update_rows:
            if row.height > up_to_height:
                break
            out.append(self._proven_update(row))
        return out

    def proven_validator_updates(self, from_index: int, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` validator updates from log position ``from_index`` on, as
        bundles carry them, stopping before the first that no quorum-signed checkpoint
        covers yet (a witness following the validator set reads these)."""
        out: list[dict[str, Any]] = []
        for row in self.update_rows:
            if row.index < from_index:
                continue
            if len(out) >= limit:
                break
            try:
                out.append(self._proven_update(row))
            except TallyError:  # not yet covered by a quorum-signed checkpoint
                break
        return out

    def _proven_update(self, row: EventRow) -> dict[str, Any]:
        block, note = self.first_quorum_checkpoint(row.index)
        return {"index": row.index, "leaf": b64(row.leaf), "details": b64(row.details),
                "inclusion": self.inclusion(row.index, block.log_size), "checkpoint": note}


_ADDRESS = re.compile(r"^[0-9a-f]{40}$")
_MEMBER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
_PROPOSAL_ID = re.compile(r"^[0-9a-f]{2,128}$")


def check_address(text: str) -> str:
    if not _ADDRESS.match(text):
        raise TallyError("an account address is 40 lowercase hex digits",
                         Code.INVALID_REQUEST)
    return text


def check_member_id(text: str) -> str:
    if not _MEMBER_ID.match(text):
        raise TallyError("a member id is 1-64 letters, digits and . _ : -",
                         Code.INVALID_REQUEST)
    return text


def check_proposal_id(text: str) -> str:
    if not _PROPOSAL_ID.match(text):
        raise TallyError("a proposal id is the hex id of the transaction that proposed it",
                         Code.INVALID_REQUEST)
    return text


def check_resource(text: str) -> str:
    """A policy resource name (tally.exec.policy.check_resource), as a request error."""
    from tally.exec.policy import check_resource as check

    try:
        return check("resource", text)
    except TallyError as exc:
        raise TallyError(exc.message, Code.INVALID_REQUEST) from None


@functools.lru_cache(maxsize=8)
def _committee_actions(version: int) -> tuple[str, ...]:
    """The committee actions of a protocol version's rules."""
    from tally.exec.rules import rules_for

    return tuple(sorted(rules_for(version).actions))


def _member_doc(record: dict[str, Any]) -> dict[str, Any]:
    return {"id": record["id"], "name": record["name"], "credit_code": record["credit_code"],
            "status": record["status"], "cas": list(record["cas"]), "height": record["height"]}


def _parse_hex(text: str, what: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise TallyError(f"{what} must be hex", Code.INVALID_REQUEST) from None


class _ValueReader:
    """Committed state values through a reader (for the rules a bare reader runs with)."""

    def __init__(self, reader: ChainReader) -> None:
        self.reader = reader

    def get(self, key: bytes) -> Any | None:
        return self.reader.value(key)
