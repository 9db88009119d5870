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

State: one JSON file, ``{"origin", "size", "root"}`` (root in base64) of the latest
checkpoint cosigned, replaced atomically (write, fsync, rename) *before* the answer, under
one lock, so a cosignature is never given for a size smaller than one already given
(the rollback race of the spec).

Trust: the witness checks a checkpoint against the genesis validator set (and the
validator updates it is told of at start). After a validator-set change its operator
restarts it with the updated set (`--validators`), as C2SP witnesses are reconfigured
when a log's keys change.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading
import time
from collections.abc import Callable
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


@dataclass(frozen=True)
class Answer:
    """What the HTTP layer sends back."""

    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"


class Witness:
    """The witness of one chain's custody log (see the module docstring)."""

    def __init__(self, key: NamedKey, genesis: Genesis, state_path: Path,
                 clock: Callable[[], int] = lambda: int(time.time())) -> None:
        if key.key.suite.name != genesis.suite.name:
            raise ValueError(f"the witness key is a {key.key.suite.name} key; the chain "
                             f"uses {genesis.suite.name}")
        self.genesis = genesis
        self.suite = genesis.suite
        doc = genesis.to_doc()
        self.history = ValidatorHistory(genesis_validator_docs(doc), genesis.suite,
                                        genesis.chain_id, genesis.hash, binds_genesis(doc))
        self.origin = self.history.origin
        self.signer = CosignatureSigner(key.name, key.key, clock)
        self.state_path = Path(state_path)
        self._lock = threading.Lock()
        self.size, self.root = self._load()

    @property
    def name(self) -> str:
        return self.signer.name

    @property
    def public_key(self) -> bytes:
        return self.signer.public_key

    def _load(self) -> tuple[int, bytes | None]:
        if not self.state_path.exists():
            return 0, None
        doc = json.loads(self.state_path.read_text())
        if doc.get("origin") != self.origin:
            raise ValueError(f"{self.state_path} is the state of another log "
                             f"({doc.get('origin')!r})")
        return int(doc["size"]), base64.b64decode(doc["root"])

    def _save(self, size: int, root: bytes) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump({"origin": self.origin, "size": size,
                       "root": base64.b64encode(root).decode()}, f)
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
        try:
            checkpoint, _signers = self.history.check(note)
        except EvidenceError as exc:
            return Answer(403, f"the checkpoint does not verify: {exc.message}\n")
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
            self._save(checkpoint.size, checkpoint.root)
            self.size, self.root = checkpoint.size, checkpoint.root
        return Answer(200, signature_line(text, self.signer))


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
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def add_checkpoint(request: Request) -> PlainTextResponse:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_REQUEST_BYTES:
                return PlainTextResponse("the request is too large\n", 413)
        answer = witness.add_checkpoint(body)
        return PlainTextResponse(answer.body, answer.status, media_type=answer.content_type)

    async def info(request: Request) -> PlainTextResponse:
        return PlainTextResponse(
            f"{witness.name} {witness.suite.name} {witness.public_key.hex()}\n"
            f"{witness.origin} {witness.size}\n")

    return Starlette(routes=[Route("/add-checkpoint", add_checkpoint, methods=["POST"]),
                             Route("/", info, methods=["GET"])])
