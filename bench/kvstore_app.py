"""Example ABCI application: a persistent key=value store, like CometBFT's kvstore.

A benchmark and test tool, not part of Tally's runtime: `bench/bench_kvstore.py`
measures the Python ABCI path with it against CometBFT's built-in Go kvstore, and
`tests/network/test_abci_single_node.py` and `tests/network/test_abci_localnet.py` use it to exercise
the ABCI layer end to end (handshake, replay, proposals, queries) with an app simpler
than Tally's.  Transactions are ``key=value`` (exactly one ``=``, not first or last).

Persistence: SQLite, written once per block in `commit` inside one transaction, so the
stored (height, app hash, pairs) is always a committed block's state.  After a crash
`info` reports that height and CometBFT replays any newer blocks it has.

App hash: SHA-256 over a multiset hash of the pairs (the sum, mod 2**256, of one
SHA-256 per pair).  It depends only on the final state, never on history or order, and
updates in O(writes) per block, so it stays cheap at any store size.  A sum of hashes
is fine for an example and for detecting divergence between honest replicas; it is not
a commitment against an adversary (that is what Tally's state trie is for).

Run as a process:  ``python bench/kvstore_app.py --address tcp://127.0.0.1:26658
--db /path/kv.sqlite``; `kvstore_argv` is that command line for one node of a
`Localnet`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sqlite3
import sys
from collections.abc import Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tally.consensus.abci.application import (  # noqa: E402
    ABCI_VERSION,
    CODE_OK,
    Application,
    take_txs_within,
)
from tally.consensus.abci.proto_gen.tendermint.abci import types_pb2 as abci  # noqa: E402
from tally.consensus.abci.wire import encode_uvarint  # noqa: E402
from tally.net.cometbft.localnet import NodeSpec  # noqa: E402

CODE_BAD_FORMAT = 1
APP_VERSION = 1
_MOD = 1 << 256
_HASH_DOMAIN = b"tally-kvstore/v1"

log = logging.getLogger("tally.abci.kvstore")


def pair_digest(key: bytes, value: bytes) -> int:
    h = hashlib.sha256(b"kv" + encode_uvarint(len(key)) + key + value).digest()
    return int.from_bytes(h, "big")


def hash_from_accumulator(acc: int) -> bytes:
    return hashlib.sha256(_HASH_DOMAIN + acc.to_bytes(32, "big")).digest()


def state_hash(pairs: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The app hash of a store holding exactly `pairs` (independent recomputation)."""
    acc = 0
    for k, v in pairs:
        acc = (acc + pair_digest(k, v)) % _MOD
    return hash_from_accumulator(acc)


def parse_tx(tx: bytes) -> tuple[bytes, bytes] | None:
    if tx.count(b"=") != 1 or tx.startswith(b"=") or tx.endswith(b"="):
        return None
    k, v = tx.split(b"=")
    return k, v


class KVStore(Application):
    """key=value store persisted in SQLite (or in memory when `db_path` is None)."""

    def __init__(self, db_path: str | Path | None = None) -> None:
        self.db = sqlite3.connect(str(db_path) if db_path else ":memory:", isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")  # commit() must survive a power cut
        self.db.execute("CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL)")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS meta (id INTEGER PRIMARY KEY CHECK (id = 0),"
            " height INTEGER NOT NULL, acc BLOB NOT NULL, size INTEGER NOT NULL)"
        )
        row = self.db.execute("SELECT height, acc, size FROM meta WHERE id = 0").fetchone()
        if row is None:
            self.height, self.acc, self.size = 0, 0, 0
        else:
            self.height, self.acc, self.size = row[0], int.from_bytes(row[1], "big"), row[2]
        self.app_hash = hash_from_accumulator(self.acc)
        # Block being executed: FinalizeBlock stages, Commit persists.
        self._staged: dict[bytes, bytes] = {}
        self._staged_height: int | None = None
        self._staged_acc = self.acc
        self._staged_size = self.size

    # --- reads -----------------------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        """Committed value of `key` (what Query answers)."""
        row = self.db.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def _current(self, key: bytes) -> bytes | None:
        if key in self._staged:
            return self._staged[key]
        return self.get(key)

    # --- ABCI ------------------------------------------------------------------------

    def info(self, req: abci.RequestInfo) -> abci.ResponseInfo:
        return abci.ResponseInfo(
            data=json.dumps({"size": self.size}),
            version=ABCI_VERSION,
            app_version=APP_VERSION,
            last_block_height=self.height,
            last_block_app_hash=self.app_hash if self.height else b"",
        )

    def init_chain(self, req: abci.RequestInitChain) -> abci.ResponseInitChain:
        return abci.ResponseInitChain(app_hash=self.app_hash)

    def check_tx(self, req: abci.RequestCheckTx) -> abci.ResponseCheckTx:
        if parse_tx(req.tx) is None:
            return abci.ResponseCheckTx(code=CODE_BAD_FORMAT, log="want key=value")
        return abci.ResponseCheckTx(code=CODE_OK, gas_wanted=1)

    def prepare_proposal(self, req: abci.RequestPrepareProposal) -> abci.ResponsePrepareProposal:
        valid = (tx for tx in req.txs if parse_tx(tx) is not None)
        return abci.ResponsePrepareProposal(txs=take_txs_within(valid, req.max_tx_bytes))

    def process_proposal(self, req: abci.RequestProcessProposal) -> abci.ResponseProcessProposal:
        ok = all(parse_tx(tx) is not None for tx in req.txs)
        status = abci.ResponseProcessProposal.ACCEPT if ok else abci.ResponseProcessProposal.REJECT
        return abci.ResponseProcessProposal(status=status)

    def finalize_block(self, req: abci.RequestFinalizeBlock) -> abci.ResponseFinalizeBlock:
        if req.height != self.height + 1:
            # CometBFT's handshake guarantees this; anything else is a bug worth a crash.
            raise RuntimeError(f"FinalizeBlock height {req.height}, app at {self.height}")
        self._staged = {}
        acc, size = self.acc, self.size
        results = []
        for tx in req.txs:
            kv = parse_tx(tx)
            if kv is None:
                results.append(abci.ExecTxResult(code=CODE_BAD_FORMAT, log="want key=value"))
                continue
            k, v = kv
            old = self._current(k)
            if old is None:
                size += 1
            else:
                acc -= pair_digest(k, old)
            acc = (acc + pair_digest(k, v)) % _MOD
            self._staged[k] = v
            results.append(
                abci.ExecTxResult(
                    code=CODE_OK,
                    events=[
                        abci.Event(
                            type="kv",
                            attributes=[
                                abci.EventAttribute(
                                    key="key", value=k.decode("utf-8", "replace"), index=True
                                )
                            ],
                        )
                    ],
                )
            )
        self._staged_height, self._staged_acc, self._staged_size = req.height, acc, size
        return abci.ResponseFinalizeBlock(tx_results=results, app_hash=hash_from_accumulator(acc))

    def commit(self, req: abci.RequestCommit) -> abci.ResponseCommit:
        if self._staged_height is None:
            raise RuntimeError("Commit without FinalizeBlock")
        db = self.db
        db.execute("BEGIN")
        try:
            db.executemany(
                "INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
                self._staged.items(),
            )
            db.execute(
                "INSERT INTO meta (id, height, acc, size) VALUES (0, ?, ?, ?) ON CONFLICT(id)"
                " DO UPDATE SET height = excluded.height, acc = excluded.acc,"
                " size = excluded.size",
                (self._staged_height, self._staged_acc.to_bytes(32, "big"), self._staged_size),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.height, self.acc, self.size = self._staged_height, self._staged_acc, self._staged_size
        self.app_hash = hash_from_accumulator(self.acc)
        self._staged, self._staged_height = {}, None
        return abci.ResponseCommit()

    def query(self, req: abci.RequestQuery) -> abci.ResponseQuery:
        if req.path in ("", "/store", "/key"):
            value = self.get(req.data)
            return abci.ResponseQuery(
                code=CODE_OK,
                key=req.data,
                value=value or b"",
                log="exists" if value is not None else "does not exist",
                height=self.height,
            )
        if req.path == "/hash":
            return abci.ResponseQuery(code=CODE_OK, value=self.app_hash, height=self.height)
        return abci.ResponseQuery(code=CODE_BAD_FORMAT, log=f"unknown path {req.path!r}")

    def close(self) -> None:
        self.db.close()


def main(argv: list[str] | None = None) -> None:
    from tally.consensus.abci.server import serve

    ap = argparse.ArgumentParser(description="Tally example kvstore ABCI application")
    ap.add_argument("--address", default="tcp://127.0.0.1:26658")
    ap.add_argument("--db", default=None, help="SQLite file (default: in memory)")
    ap.add_argument("--log-level", default="INFO")
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = KVStore(args.db)
    log.info("kvstore at height %d, app hash %s", app.height, app.app_hash.hex())
    try:
        serve(app, args.address)
    finally:
        app.close()


def kvstore_argv(spec: NodeSpec) -> list[str]:
    """Command line of this app for `spec` (db in its app_dir), for ``Localnet(app=...)``."""
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        "--address",
        spec.proxy_app,
        "--db",
        str(Path(spec.app_dir) / "kv.sqlite"),
    ]


if __name__ == "__main__":
    main()
