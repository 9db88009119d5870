"""The slice of OpenSSL 3's libcrypto that SM2 needs, bound with :mod:`ctypes`.

Why ctypes and not pure Python: OpenSSL's SM2 scalar multiplication is constant-time
and about 30 times faster than big-integer arithmetic in Python, and libcrypto 3 is
already in the process (``hashlib`` links it). ``cryptography`` does not expose SM2.
See docs/decisions/0102-sm2-through-libcrypto.md.

Only this module touches raw pointers. It keeps three rules:

* every object allocated here is freed here (``EvpPkey`` owns its ``EVP_PKEY``);
* every failed call clears the thread's OpenSSL error queue, because ``ssl`` and
  ``hashlib`` read that same queue and must not see stale SM2 errors;
* nothing here decides what is valid: range and length checks live in
  :mod:`tally.crypto.sm2`, which calls in only with well-formed input.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
from collections.abc import Callable
from ctypes import POINTER, byref, c_char_p, c_int, c_size_t, c_uint, c_ulong, c_void_p


class OpenSSLUnavailableError(RuntimeError):
    """libcrypto 3 with SM2 could not be loaded, so the ``gm`` suite cannot run."""


class OpenSSLError(RuntimeError):
    """libcrypto refused an operation that well-formed input should never fail."""


# --- loading ---------------------------------------------------------------------------

_NID_SM2 = 1172  # obj_mac.h: NID_sm2
_POINT_CONVERSION_UNCOMPRESSED = 4
# evp.h selections: EVP_PKEY_PUBLIC_KEY and EVP_PKEY_KEYPAIR
_SELECT_PUBLIC_KEY = 0x86
_SELECT_KEYPAIR = 0x87
# core.h OSSL_PARAM data types
_PARAM_UNSIGNED_INTEGER = 2
_PARAM_UTF8_STRING = 4
_PARAM_OCTET_STRING = 5


def _candidate_names() -> list[str]:
    # Only versioned names: an unversioned libcrypto may be 1.1 (no SM2 provider API),
    # and macOS aborts the process when the unversioned system one is opened.
    names = ["libcrypto.so.3", "libcrypto.3.dylib", "libcrypto-3-x64.dll", "libcrypto-3.dll"]
    found = ctypes.util.find_library("crypto")
    if found and ("so.3" in found or ".3." in found):
        names.insert(0, found)
    return names


def _load() -> ctypes.CDLL:
    errors = []
    for name in _candidate_names():
        try:
            lib = ctypes.CDLL(name)
        except OSError as exc:
            errors.append(f"{name}: {exc}")
            continue
        lib.OpenSSL_version_num.restype = c_ulong
        if lib.OpenSSL_version_num() < 0x30000000:
            errors.append(f"{name}: older than OpenSSL 3.0")
            continue
        return lib
    raise OpenSSLUnavailableError(
        "the gm suite needs OpenSSL 3 libcrypto with SM2; tried " + "; ".join(errors)
    )


class OsslParam(ctypes.Structure):
    """``struct ossl_param_st`` from openssl/core.h."""

    _fields_ = [
        ("key", c_char_p),
        ("data_type", c_uint),
        ("data", c_void_p),
        ("data_size", c_size_t),
        ("return_size", c_size_t),
    ]


_lib: ctypes.CDLL | None = None
_lib_lock = threading.Lock()

_PROTOTYPES: dict[str, tuple[object, list[object]]] = {
    "ERR_get_error": (c_ulong, []),
    "ERR_error_string_n": (None, [c_ulong, c_char_p, c_size_t]),
    "ERR_clear_error": (None, []),
    "BN_bin2bn": (c_void_p, [c_char_p, c_int, c_void_p]),
    "BN_clear_free": (None, [c_void_p]),
    "EC_GROUP_new_by_curve_name": (c_void_p, [c_int]),
    "EC_GROUP_free": (None, [c_void_p]),
    "EC_POINT_new": (c_void_p, [c_void_p]),
    "EC_POINT_free": (None, [c_void_p]),
    "EC_POINT_mul": (c_int, [c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p]),
    "EC_POINT_point2oct": (c_size_t, [c_void_p, c_void_p, c_int, c_char_p, c_size_t, c_void_p]),
    "EVP_PKEY_CTX_new_from_name": (c_void_p, [c_void_p, c_char_p, c_char_p]),
    "EVP_PKEY_CTX_free": (None, [c_void_p]),
    "EVP_PKEY_CTX_set1_id": (c_int, [c_void_p, c_char_p, c_int]),
    "EVP_PKEY_fromdata_init": (c_int, [c_void_p]),
    "EVP_PKEY_fromdata": (c_int, [c_void_p, POINTER(c_void_p), c_int, POINTER(OsslParam)]),
    "EVP_PKEY_free": (None, [c_void_p]),
    "EVP_MD_CTX_new": (c_void_p, []),
    "EVP_MD_CTX_free": (None, [c_void_p]),
    "EVP_DigestSignInit_ex": (
        c_int,
        [c_void_p, POINTER(c_void_p), c_char_p, c_void_p, c_char_p, c_void_p, c_void_p],
    ),
    "EVP_DigestVerifyInit_ex": (
        c_int,
        [c_void_p, POINTER(c_void_p), c_char_p, c_void_p, c_char_p, c_void_p, c_void_p],
    ),
    "EVP_DigestSign": (c_int, [c_void_p, c_char_p, POINTER(c_size_t), c_char_p, c_size_t]),
    "EVP_DigestVerify": (c_int, [c_void_p, c_char_p, c_size_t, c_char_p, c_size_t]),
    "EVP_PKEY_CTX_new_from_pkey": (c_void_p, [c_void_p, c_void_p, c_char_p]),
    "EVP_PKEY_encrypt_init": (c_int, [c_void_p]),
    "EVP_PKEY_encrypt": (c_int, [c_void_p, c_char_p, POINTER(c_size_t), c_char_p, c_size_t]),
    "EVP_PKEY_decrypt_init": (c_int, [c_void_p]),
    "EVP_PKEY_decrypt": (c_int, [c_void_p, c_char_p, POINTER(c_size_t), c_char_p, c_size_t]),
}


def lib() -> ctypes.CDLL:
    """libcrypto with the prototypes above declared; loaded on first use, so importing
    :mod:`tally.crypto` never fails on a machine that only runs the ``intl`` suite."""
    global _lib
    if _lib is not None:
        return _lib
    with _lib_lock:
        if _lib is None:
            loaded = _load()
            for name, (restype, argtypes) in _PROTOTYPES.items():
                function = getattr(loaded, name)
                function.restype = restype
                function.argtypes = argtypes
            _require_sm2(loaded)
            _lib = loaded
    return _lib


def _require_sm2(loaded: ctypes.CDLL) -> None:
    # Some distributions build OpenSSL without SM2; fail once, clearly, at load time.
    ctx = loaded.EVP_PKEY_CTX_new_from_name(None, b"SM2", None)
    if not ctx:
        loaded.ERR_clear_error()
        raise OpenSSLUnavailableError("this OpenSSL 3 libcrypto was built without SM2")
    loaded.EVP_PKEY_CTX_free(ctx)


def _fail(what: str) -> OpenSSLError:
    """An error naming ``what`` and libcrypto's reasons, with the queue emptied."""
    crypto = lib()
    reasons = []
    while code := crypto.ERR_get_error():
        buffer = ctypes.create_string_buffer(256)
        crypto.ERR_error_string_n(code, buffer, len(buffer))
        reasons.append(buffer.value.decode(errors="replace"))
    return OpenSSLError(f"{what} failed: {'; '.join(reasons) or 'no reason given'}")


# --- keys ------------------------------------------------------------------------------


class EvpPkey:
    """Owns one ``EVP_PKEY``; frees it when the last Python reference goes.

    Building an ``EVP_PKEY`` decodes and checks a point, so keys are built once and
    shared (key objects hold theirs; verification keeps a small cache)."""

    __slots__ = ("pointer", "_free")

    def __init__(self, pointer: int) -> None:
        self.pointer = pointer
        # Held here because module globals may already be gone at interpreter exit.
        self._free = lib().EVP_PKEY_free

    def __del__(self) -> None:
        if self.pointer:
            self._free(self.pointer)
            self.pointer = 0


def sm2_public_from_private(scalar: bytes) -> bytes:
    """The uncompressed SEC1 point ``scalar`` × G on the SM2 curve (65 bytes).

    OpenSSL 3.0's ``EVP_PKEY_fromdata`` does not derive a missing public key, so it is
    computed here with ``EC_POINT_mul``, whose generator path is a constant-time ladder.
    """
    crypto = lib()
    group = crypto.EC_GROUP_new_by_curve_name(_NID_SM2)
    point = crypto.EC_POINT_new(group) if group else None
    bignum = crypto.BN_bin2bn(scalar, len(scalar), None)
    try:
        if not (group and point and bignum):
            raise _fail("allocating SM2 curve objects")
        if crypto.EC_POINT_mul(group, point, bignum, None, None, None) != 1:
            raise _fail("EC_POINT_mul")
        out = ctypes.create_string_buffer(65)
        written = crypto.EC_POINT_point2oct(
            group, point, _POINT_CONVERSION_UNCOMPRESSED, out, len(out), None
        )
        if written != 65:
            raise _fail("EC_POINT_point2oct")
        return out.raw
    finally:
        crypto.BN_clear_free(bignum)
        crypto.EC_POINT_free(point)
        crypto.EC_GROUP_free(group)


def _sm2_pkey_fromdata(selection: int, params: list[tuple[bytes, int, bytes]]) -> EvpPkey | None:
    """``EVP_PKEY_fromdata`` for an SM2 key; None when OpenSSL rejects the material."""
    crypto = lib()
    buffers = [ctypes.create_string_buffer(data, len(data)) for _, _, data in params]
    array = (OsslParam * (len(params) + 1))()  # zero-filled: the last entry ends the list
    for entry, (key, data_type, data), buffer in zip(array, params, buffers, strict=False):
        entry.key = key
        entry.data_type = data_type
        entry.data = ctypes.cast(buffer, c_void_p)
        entry.data_size = len(data)
    ctx = crypto.EVP_PKEY_CTX_new_from_name(None, b"SM2", None)
    pkey = c_void_p()
    try:
        if not ctx or crypto.EVP_PKEY_fromdata_init(ctx) != 1:
            raise _fail("EVP_PKEY_fromdata_init")
        if crypto.EVP_PKEY_fromdata(ctx, byref(pkey), selection, array) != 1 or not pkey.value:
            crypto.ERR_clear_error()
            return None
        return EvpPkey(pkey.value)
    finally:
        crypto.EVP_PKEY_CTX_free(ctx)
        for buffer in buffers:  # wipe our copy of the private scalar
            ctypes.memset(buffer, 0, len(buffer))


def sm2_pkey_from_public(point: bytes) -> EvpPkey | None:
    """An SM2 public ``EVP_PKEY`` from an uncompressed SEC1 point; None when the point
    is not on the curve (OpenSSL checks this while decoding)."""
    return _sm2_pkey_fromdata(
        _SELECT_PUBLIC_KEY,
        [(b"group", _PARAM_UTF8_STRING, b"SM2"), (b"pub", _PARAM_OCTET_STRING, point)],
    )


def sm2_pkey_from_private(scalar: bytes, point: bytes) -> EvpPkey:
    """An SM2 key-pair ``EVP_PKEY`` from a 32-byte big-endian scalar and its public point."""
    # OSSL_PARAM integers are native-endian.
    native = scalar if sys.byteorder == "big" else scalar[::-1]
    pkey = _sm2_pkey_fromdata(
        _SELECT_KEYPAIR,
        [
            (b"group", _PARAM_UTF8_STRING, b"SM2"),
            (b"pub", _PARAM_OCTET_STRING, point),
            (b"priv", _PARAM_UNSIGNED_INTEGER, native),
        ],
    )
    if pkey is None:
        raise _fail("EVP_PKEY_fromdata (SM2 key pair)")
    return pkey


# --- signatures ------------------------------------------------------------------------


def _digest_init(
    init: Callable[..., int], md_ctx: int, pkey: EvpPkey, digest: bytes, dist_id: bytes
) -> None:
    crypto = lib()
    pkey_ctx = c_void_p()  # owned by md_ctx
    if init(md_ctx, byref(pkey_ctx), digest, None, None, pkey.pointer, None) != 1:
        raise _fail("EVP_Digest{Sign,Verify}Init_ex")
    # The ID must be set after init (the 3.0 provider rejects it among the init
    # parameters) and before the first update, when the provider hashes Z.
    if crypto.EVP_PKEY_CTX_set1_id(pkey_ctx, dist_id, len(dist_id)) != 1:
        raise _fail("EVP_PKEY_CTX_set1_id")


def sm2_sign_der(pkey: EvpPkey, dist_id: bytes, message: bytes) -> bytes:
    """An SM2-with-SM3 signature of ``message`` under ``dist_id``, DER ``ECDSA-Sig-Value``."""
    crypto = lib()
    md_ctx = crypto.EVP_MD_CTX_new()
    if not md_ctx:
        raise _fail("EVP_MD_CTX_new")
    try:
        _digest_init(crypto.EVP_DigestSignInit_ex, md_ctx, pkey, b"SM3", dist_id)
        out = ctypes.create_string_buffer(80)  # DER of two 256-bit integers: at most 72
        size = c_size_t(len(out))
        if crypto.EVP_DigestSign(md_ctx, out, byref(size), message, len(message)) != 1:
            raise _fail("EVP_DigestSign")
        return out.raw[: size.value]
    finally:
        crypto.EVP_MD_CTX_free(md_ctx)


def sm2_verify_der(pkey: EvpPkey, dist_id: bytes, message: bytes, signature: bytes) -> bool:
    """Whether DER ``signature`` is a valid SM2-with-SM3 signature of ``message``."""
    crypto = lib()
    md_ctx = crypto.EVP_MD_CTX_new()
    if not md_ctx:
        raise _fail("EVP_MD_CTX_new")
    try:
        _digest_init(crypto.EVP_DigestVerifyInit_ex, md_ctx, pkey, b"SM3", dist_id)
        result = crypto.EVP_DigestVerify(md_ctx, signature, len(signature), message, len(message))
        if result != 1:
            crypto.ERR_clear_error()
        return result == 1
    finally:
        crypto.EVP_MD_CTX_free(md_ctx)


# --- public-key encryption (GB/T 32918.4) ----------------------------------------------


def _sm2_cipher(pkey: EvpPkey, data: bytes, encrypt: bool) -> bytes | None:
    """One ``EVP_PKEY_encrypt``/``decrypt`` with SM3 (the provider's default digest);
    None when libcrypto refuses (for decryption: the ciphertext does not check)."""
    crypto = lib()
    init, run = (
        (crypto.EVP_PKEY_encrypt_init, crypto.EVP_PKEY_encrypt)
        if encrypt
        else (crypto.EVP_PKEY_decrypt_init, crypto.EVP_PKEY_decrypt)
    )
    what = "EVP_PKEY_encrypt" if encrypt else "EVP_PKEY_decrypt"
    ctx = crypto.EVP_PKEY_CTX_new_from_pkey(None, pkey.pointer, None)
    if not ctx:
        raise _fail("EVP_PKEY_CTX_new_from_pkey")
    out = None
    try:
        if init(ctx) != 1:
            raise _fail(what + "_init")
        size = c_size_t(0)
        if run(ctx, None, byref(size), data, len(data)) != 1 or size.value == 0:
            if encrypt:
                raise _fail(what + " (size)")
            crypto.ERR_clear_error()
            return None
        out = ctypes.create_string_buffer(size.value)
        if run(ctx, out, byref(size), data, len(data)) != 1:
            if encrypt:
                raise _fail(what)
            crypto.ERR_clear_error()
            return None
        return out.raw[: size.value]
    finally:
        crypto.EVP_PKEY_CTX_free(ctx)
        if out is not None and not encrypt:  # wipe our copy of the plaintext
            ctypes.memset(out, 0, len(out))


def sm2_encrypt_der(pkey: EvpPkey, plaintext: bytes) -> bytes:
    """SM2 encryption of ``plaintext`` to ``pkey`` with SM3: the DER ``SM2Cipher``
    (GM/T 0009: x, y, hash C3, ciphertext C2) that OpenSSL 3 writes."""
    result = _sm2_cipher(pkey, plaintext, encrypt=True)
    assert result is not None
    return result


def sm2_decrypt_der(pkey: EvpPkey, ciphertext: bytes) -> bytes | None:
    """The plaintext of a DER ``SM2Cipher`` under the key pair ``pkey``; None when
    libcrypto refuses it (not DER, C1 off the curve, or C3 does not match)."""
    return _sm2_cipher(pkey, ciphertext, encrypt=False)
