"""A witness of a Tally chain: C2SP tlog-witness over its custody log.

An institution outside the validator set (a court, an auditor, an industry association)
runs a witness to add its own signature to the chain's checkpoints, and only after it
checked that the log grew without rewriting anything it signed before. A bundle whose
checkpoint carries a witness cosignature then needs the validators *and* that witness to
have lied for a forged history to verify; `tally evidence verify --witness` asks for it.

Protocol: c2sp.org/tlog-witness, ``POST /add-checkpoint`` with a body of ``old <size>``,
up to 63 base64 consistency-proof lines, an empty line, and the signed checkpoint; the
answer is one c2sp.org/tlog-cosignature (``cosignature/v1``) line. Status codes as the
spec says: 404 for another log's origin, 403 when the validators' quorum (or, from
protocol version 3, the genesis line) does not verify, 400 for a malformed request or
an old size above the checkpoint's, 409 (with ``text/x.tlog.size``, the size it holds)
when the old size is not the one it last cosigned or a same-size root differs, 422 when
the consistency proof fails.

State: one JSON file, ``{"origin", "size", "root", "validator_updates"}`` (root in
base64, null before the first cosignature; the updates as bundles carry them) of the
latest checkpoint cosigned, replaced atomically (write, fsync, rename) *before* the
answer, under one lock, so a cosignature is never given for a size smaller than one
already given (the rollback race of the spec). The updates are proven again on load.

Trust: the witness checks a checkpoint against the validator set in force at its height:
the genesis set, changed by the ``validator.update`` events of the log itself that it
has proven. Given the chain's node API (``follow``, ``tally witness run --follow URL``),
when a checkpoint does not verify against the set it knows (no quorum, an unknown
signer, another ``validators`` line) it fetches the updates it lacks from
``GET /v1/evidence/validator-updates`` and accepts each only with its proof, as a
verifier does a bundle's: its leaf included under a checkpoint signed by a quorum of the
set *before* it (the checkpoint of its block or the next, so that a made-up update can
never sign its own proof), the update after the last one known. Then it checks the
checkpoint once more. The node is not trusted: a node that lies, stalls or floods can
make the witness refuse a checkpoint, never accept one the validators did not sign, and
every fetch is bounded (``FOLLOW_TIMEOUT`` seconds, ``MAX_FOLLOW_BYTES`` per answer,
``MAX_FOLLOW_PAGES`` answers, and at most one fetch that teaches nothing every
``follow_interval`` seconds). Like any follower of a chain by its own proofs, it relies
on the validator sets it passes through staying honest until it has learnt the next
(decision 0026).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tally.evidence.verify import (
    EvidenceError,
    ValidatorHistory,
    binds_genesis,
    genesis_validator_docs,
)
from tally.genesis import Genesis
from tally.keys import NamedKey
from tally.log.checkpoint import CosignatureSigner, parse_note, signature_line
from tally.log.merkle import ProofError, verify_consistency

#: The most consistency-proof lines a request may carry (the spec's limit).
MAX_PROOF_LINES = 63
#: The largest request body read (a checkpoint note with a few dozen signatures).
MAX_REQUEST_BYTES = 64 * 1024
#: Following the validator set: the seconds one fetch from a node may take in all, the
#: bytes one answer may have, the answers (pages) one round reads, the updates a page asks.
FOLLOW_TIMEOUT = 10.0
MAX_FOLLOW_BYTES = 1 << 20
MAX_FOLLOW_PAGES = 10
FOLLOW_PAGE = 100
#: The path of the node API that serves proven validator updates.
UPDATES_PATH = "/v1/evidence/validator-updates"

log = logging.getLogger("tally.witness")


@dataclass(frozen=True)
class Answer:
    """What the HTTP layer sends back."""

    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"


class Witness:
    """The witness of one chain's custody log (see the module docstring)."""

    def __init__(self, key: NamedKey, genesis: Genesis, state_path: Path,
                 clock: Callable[[], int] = lambda: int(time.time()), *,
                 follow: Sequence[str] = (), follow_interval: float = 5.0) -> None:
        if key.key.suite.name != genesis.suite.name:
            raise ValueError(f"the witness key is a {key.key.suite.name} key; the chain "
                             f"uses {genesis.suite.name}")
        self.genesis = genesis
        self.suite = genesis.suite
        self.origin = f"tally/{genesis.chain_id}/custody"
        self.signer = CosignatureSigner(key.name, key.key, clock)
        self.state_path = Path(state_path)
        #: Node API URLs to fetch validator updates from (untrusted).
        self.follow = [u.rstrip("/") for u in follow]
        self.follow_interval = follow_interval
        self._lock = threading.Lock()  # the state: size, root, updates and their file
        self._follow_lock = threading.Lock()  # one fetch round at a time
        self._quiet_until = 0.0  # no fetch before (monotonic), after one that taught nothing
        self.size, self.root, self.updates = self._load()
        try:
            self.history = self._history(self.updates)
        except EvidenceError as exc:
            raise ValueError(f"the validator updates in {self.state_path} do not verify: "
                             f"{exc.message}") from None

    @property
    def name(self) -> str:
        return self.signer.name

    @property
    def public_key(self) -> bytes:
        return self.signer.public_key

    def _history(self, updates: list[dict[str, Any]]) -> ValidatorHistory:
        """The validator sets of genesis as ``updates`` change them, each update proven
        (:func:`prove_updates`); EvidenceError if one is not."""
        doc = self.genesis.to_doc()
        history = ValidatorHistory(genesis_validator_docs(doc), self.suite,
                                   self.genesis.chain_id, self.genesis.hash, binds_genesis(doc))
        prove_updates(history, updates)
        return history

    def _load(self) -> tuple[int, bytes | None, list[dict[str, Any]]]:
        if not self.state_path.exists():
            return 0, None, []
        doc = json.loads(self.state_path.read_text())
        if doc.get("origin") != self.origin:
            raise ValueError(f"{self.state_path} is the state of another log "
                             f"({doc.get('origin')!r})")
        root = doc.get("root")
        return (int(doc["size"]), None if root is None else base64.b64decode(root),
                list(doc.get("validator_updates", [])))

    def _save(self, size: int, root: bytes | None, updates: list[dict[str, Any]]) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump({"origin": self.origin, "size": size,
                       "root": None if root is None else base64.b64encode(root).decode(),
                       "validator_updates": updates}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.state_path)

    def add_checkpoint(self, body: bytes) -> Answer:
        """One ``add-checkpoint`` request, answered per c2sp.org/tlog-witness."""
        try:
            old, proof, note = _parse_request(body)
        except ValueError as exc:
            return Answer(400, f"{exc}\n")
        try:
            text, _ = parse_note(note)
        except ValueError as exc:
            return Answer(400, f"not a signed note: {exc}\n")
        if text.split("\n", 1)[0] != self.origin:
            return Answer(404, f"this witness follows {self.origin} only\n")
        history = self.history
        try:
            checkpoint, _signers = history.check(note)
        except EvidenceError as exc:
            if not (exc.reason in ("checkpoint", "validators") and self.learn(history)):
                return Answer(403, f"the checkpoint does not verify: {exc.message}\n")
            try:  # once more, against the validator sets just learnt
                checkpoint, _signers = self.history.check(note)
            except EvidenceError as again:
                return Answer(403, f"the checkpoint does not verify: {again.message}\n")
        if old > checkpoint.size:
            return Answer(400, "the old size is above the checkpoint's size\n")
        with self._lock:
            if old != self.size:
                return Answer(409, f"{self.size}\n", "text/x.tlog.size")
            if old == checkpoint.size:
                if proof or (self.root is not None and self.root != checkpoint.root):
                    return Answer(409, f"{self.size}\n", "text/x.tlog.size")
            elif old == 0:
                if proof:
                    return Answer(422, "a proof from size 0 must be empty\n")
            else:
                assert self.root is not None
                try:
                    verify_consistency(self.suite.hash, old, checkpoint.size, proof, self.root,
                                       checkpoint.root)
                except ProofError as exc:
                    return Answer(422, f"the consistency proof does not verify: {exc}\n")
            self._save(checkpoint.size, checkpoint.root, self.updates)
            self.size, self.root = checkpoint.size, checkpoint.root
        return Answer(200, signature_line(text, self.signer))

    # --- following the validator set --------------------------------------------------

    def learn(self, seen: ValidatorHistory) -> bool:
        """Fetch the validator updates after those known from the ``follow`` nodes and
        keep those proven. True when the validator sets changed since ``seen`` (the
        history a checkpoint just failed against), so that the check is worth repeating."""
        if not self.follow:
            return False
        with self._follow_lock:
            if self.history is not seen:
                return True  # another request learnt while this one waited
            if time.monotonic() < self._quiet_until:
                return False
            for url in self.follow:
                try:
                    fetched = self._fetch(url)
                    if not fetched:
                        continue
                    history = self._history(self.updates + fetched)
                except (FollowError, EvidenceError) as exc:
                    log.warning("validator updates from %s refused: %s", url, exc)
                    continue
                with self._lock:
                    updates = self.updates + fetched
                    self._save(self.size, self.root, updates)
                    self.updates, self.history = updates, history
                log.info("learnt %d validator update(s) from %s", len(fetched), url)
                return True
            self._quiet_until = time.monotonic() + self.follow_interval
            return False

    def _fetch(self, url: str) -> list[dict[str, Any]]:
        """The updates ``url`` serves after the last one known, unproven; FollowError when
        it does not answer in bounds."""
        import httpx

        after = self.updates[-1]["index"] if self.updates else -1
        deadline = time.monotonic() + FOLLOW_TIMEOUT
        out: list[dict[str, Any]] = []
        with httpx.Client(timeout=FOLLOW_TIMEOUT, follow_redirects=False) as client:
            for _ in range(MAX_FOLLOW_PAGES):
                page = _get_json(client, f"{url}{UPDATES_PATH}",
                                 {"from_index": after + 1, "limit": FOLLOW_PAGE}, deadline)
                if not isinstance(page, list) or not all(
                        isinstance(item, dict) and type(item.get("index")) is int
                        for item in page):
                    raise FollowError("the answer is not a list of validator updates")
                new = [item for item in page if item["index"] > after]
                if not new:
                    break
                out += new
                after = new[-1]["index"]
                if len(page) < FOLLOW_PAGE:
                    break
        return out


class FollowError(Exception):
    """A node's answer to a fetch of validator updates was out of bounds or unreadable."""


def _get_json(client: Any, url: str, params: dict[str, int], deadline: float) -> Any:
    """GET ``url`` as JSON, within ``deadline`` (monotonic) and ``MAX_FOLLOW_BYTES``."""
    import httpx

    try:
        with client.stream("GET", url, params=params) as response:
            if response.status_code != 200:
                raise FollowError(f"{url} answered {response.status_code}")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_FOLLOW_BYTES:
                    raise FollowError(f"{url} answered more than {MAX_FOLLOW_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise FollowError(f"{url} took more than {FOLLOW_TIMEOUT} s")
    except httpx.HTTPError as exc:
        raise FollowError(f"{url}: {exc}") from None
    try:
        return json.loads(bytes(body))
    except (ValueError, RecursionError) as exc:
        raise FollowError(f"{url} answered no JSON: {exc}") from None


def prove_updates(history: ValidatorHistory, updates: list[dict[str, Any]]) -> None:
    """Learn ``updates`` (a bundle's ``validator_updates`` items) into ``history``, which
    holds none yet, or EvidenceError: ``ValidatorHistory.prove`` checks each against the
    set before it, so a made-up update cannot prove itself with the key it adds."""
    history.prove(updates)


def _parse_request(body: bytes) -> tuple[int, list[bytes], str]:
    if len(body) > MAX_REQUEST_BYTES:
        raise ValueError(f"the request is larger than {MAX_REQUEST_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the request is not UTF-8") from None
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise ValueError("the request has no empty line before the checkpoint")
    lines = head.split("\n")
    first = lines[0]
    size_text = first[4:]
    if not first.startswith("old ") or not size_text.isdigit() or \
            (size_text != "0" and size_text.startswith("0")):
        raise ValueError("the first line must be 'old <size>'")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise ValueError(f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof = []
    for line in lines[1:]:
        try:
            proof.append(base64.b64decode(line, validate=True))
        except (binascii.Error, ValueError):
            raise ValueError("a consistency proof line is not base64") from None
    return int(size_text), proof, note


def make_app(witness: Witness) -> Any:
    """The witness's HTTP interface (an ASGI app): ``POST /add-checkpoint``."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def add_checkpoint(request: Request) -> PlainTextResponse:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_REQUEST_BYTES:
                return PlainTextResponse("the request is too large\n", 413)
        # In a worker thread: a check may fetch validator updates from a node (bounded).
        answer = await run_in_threadpool(witness.add_checkpoint, body)
        return PlainTextResponse(answer.body, answer.status, media_type=answer.content_type)

    async def info(request: Request) -> PlainTextResponse:
        return PlainTextResponse(
            f"{witness.name} {witness.suite.name} {witness.public_key.hex()}\n"
            f"{witness.origin} {witness.size}\n")

    return Starlette(routes=[Route("/add-checkpoint", add_checkpoint, methods=["POST"]),
                             Route("/", info, methods=["GET"])])
