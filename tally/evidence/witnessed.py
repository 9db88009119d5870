"""A witness policy over a verified bundle: which named witnesses cosigned its checkpoint.

`verify_bundle` proves what the validators signed. A court may want more: that an
institution outside the validator set (tally.witness) checked the log's history too.
A witness's ``cosignature/v1`` line on the bundle's checkpoint, or on its consistency
checkpoint (whose proof, already verified, shows the event's checkpoint is a prefix of
it), counts for that witness. Lines from keys the policy does not name are ignored, as
C2SP signed notes require.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tally.crypto import get_suite
from tally.evidence.verify import EvidenceError
from tally.log.checkpoint import CosignatureVerifier, NoteError, open_note


def witnesses_of(bundle: Mapping[str, Any], witnesses: Mapping[str, bytes]) -> list[str]:
    """The names in ``witnesses`` ({name: public key}) whose cosignature of the bundle's
    checkpoint (or of its consistency checkpoint) verifies. Call it on a bundle that
    `verify_bundle` accepted. Raises EvidenceError if a named witness's line is there
    but does not verify (a damaged or forged line is not silently dropped)."""
    suite = get_suite(bundle["suite"])
    notes = [bundle["checkpoint"]]
    if "consistency" in bundle:
        notes.append(bundle["consistency"]["checkpoint"])
    found = []
    for name, key in sorted(witnesses.items()):
        verifier = CosignatureVerifier(name, key, suite)
        for note in notes:
            try:
                open_note(note, [verifier])
            except NoteError as exc:
                if exc.reason == NoteError.NO_KNOWN_SIGNATURE:
                    continue
                raise EvidenceError("witness", f"witness {name}'s cosignature does not "
                                               f"verify: {exc}") from None
            found.append(name)
            break
    return found


def require_witnesses(bundle: Mapping[str, Any], witnesses: Mapping[str, bytes],
                      required: int) -> list[str]:
    """The witnesses that cosigned, or EvidenceError("witness") if fewer than
    ``required`` of those named did."""
    found = witnesses_of(bundle, witnesses)
    if len(found) < required:
        missing = sorted(set(witnesses) - set(found))
        raise EvidenceError("witness", f"{len(found)} of the {required} witness cosignatures "
                                       f"required; none from {', '.join(missing)}")
    return found
