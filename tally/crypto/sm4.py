"""SM4 (GB/T 32907-2016) authenticated encryption for ``gm`` chains: SM4-GCM.

GCM with SM4 is the construction of RFC 8998 (TLS 1.3 ``TLS_SM4_GCM_SM3``), and the
OpenSSL inside ``cryptography`` implements it, so Tally does not assemble its own
encrypt-then-MAC. See docs/decisions/0103-sm4-gcm.md.

Sealed format (what :func:`sm4_encrypt` returns and :func:`sm4_decrypt` takes)::

    nonce (12 bytes, random) || ciphertext (len(plaintext) bytes) || tag (16 bytes)

Nonces are drawn at random, which is safe for up to 2**32 messages under one key
(NIST SP 800-38D §8.3); callers that encrypt more than that must rotate keys.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

KEY_SIZE = 16
NONCE_SIZE = 12
TAG_SIZE = 16
BLOCK_SIZE = 16


class DecryptionError(ValueError):
    """The sealed data, its associated data or the key is wrong: nothing is returned,
    because GCM cannot tell which, and a partial plaintext must never be used."""


def _check_key(key: bytes) -> None:
    if len(key) != KEY_SIZE:
        raise ValueError("an SM4 key is 16 bytes")


def _seal(key: bytes, nonce: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    """SM4-GCM with an explicit nonce: ``ciphertext || tag`` (RFC 8998's layout)."""
    encryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(associated_data)
    ciphertext = encryptor.update(plaintext) + encryptor.finalize()
    return ciphertext + encryptor.tag


def _open(key: bytes, nonce: bytes, sealed: bytes, associated_data: bytes) -> bytes:
    if len(sealed) < TAG_SIZE:
        raise DecryptionError("sealed data is shorter than its tag")
    ciphertext, tag = sealed[:-TAG_SIZE], sealed[-TAG_SIZE:]
    decryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
    decryptor.authenticate_additional_data(associated_data)
    plaintext = decryptor.update(ciphertext)
    try:
        return plaintext + decryptor.finalize()
    except InvalidTag:
        raise DecryptionError("SM4-GCM authentication failed") from None


def sm4_encrypt(key: bytes, plaintext: bytes, associated_data: bytes = b"") -> bytes:
    """Encrypt and authenticate ``plaintext``, and authenticate ``associated_data``
    (sent or stored beside it in the clear), under a 16-byte ``key``."""
    _check_key(key)
    nonce = os.urandom(NONCE_SIZE)
    return nonce + _seal(key, nonce, plaintext, associated_data)


def sm4_decrypt(key: bytes, sealed: bytes, associated_data: bytes = b"") -> bytes:
    """The plaintext of :func:`sm4_encrypt`'s output; :class:`DecryptionError` when any
    byte of ``sealed`` or ``associated_data`` differs, or the key is not the one used."""
    _check_key(key)
    if len(sealed) < NONCE_SIZE + TAG_SIZE:
        raise DecryptionError("sealed data is shorter than a nonce and a tag")
    return _open(key, sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], associated_data)


def sm4_encrypt_block(key: bytes, block: bytes) -> bytes:
    """The raw SM4 permutation of one 16-byte block. Not a way to encrypt data (it
    is ECB); it exists so the cipher itself is checked against GB/T 32907's example."""
    _check_key(key)
    if len(block) != BLOCK_SIZE:
        raise ValueError("an SM4 block is 16 bytes")
    encryptor = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()
