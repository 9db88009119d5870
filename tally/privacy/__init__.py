"""Private data: fields only their parties and the regulators can read (issue 16).

:mod:`tally.privacy.envelope` is the cryptographic foundation: one payload encrypted
once under a fresh data key, the key wrapped to each recipient's encryption key, and a
salted commitment for the ledger. Decision 0030 records why and how.
"""

from __future__ import annotations

from tally.privacy.envelope import (
    EncryptionKey,
    EnvelopeContext,
    EnvelopeError,
    Opened,
    SealedPrivate,
    check_private_disclosure,
    commit_private,
    erase,
    erased_recipients,
    generate_encryption_key,
    key_id,
    load_encryption_key,
    open_envelope,
    open_private,
    recipients_of,
    seal,
    seal_private,
)

__all__ = [
    "EncryptionKey",
    "EnvelopeContext",
    "EnvelopeError",
    "Opened",
    "SealedPrivate",
    "check_private_disclosure",
    "commit_private",
    "erase",
    "erased_recipients",
    "generate_encryption_key",
    "key_id",
    "load_encryption_key",
    "open_envelope",
    "open_private",
    "recipients_of",
    "seal",
    "seal_private",
]
