"""The unified social credit code (统一社会信用代码) of GB 32100-2015.

Every organisation registered in China (companies, institutions, social organisations)
has exactly one: 18 characters,

* positions 1-17 drawn from the 31-character alphabet ``0-9 A-H J-N P-R T-U W-Y`` (no
  I, O, Z, S, V, which are easily misread), each standing for its index 0..30
  (A = 10 ... Y = 30);
* position 18 a check character from the same alphabet: with the weights
  ``W_i = 3^(i-1) mod 31`` (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30,
  28), ``C_18 = 31 - (sum C_i * W_i mod 31)``, and 31 written as ``0``.

Because 31 is prime and no weight is 0 mod 31, changing any one character always
changes the check: every single-character error is detected (the tests prove it over
random codes). This module checks the alphabet, the length and the check character,
which is what the standard defines for the code as a whole; it does not look up
whether a registration authority, region (GB/T 2260) or organisation code exists.

Input is normalised before the check (Unicode NFKC, so full-width characters typed in
a Chinese input method count as their ASCII forms; surrounding whitespace removed;
upper case), and the normalised code is what is returned and stored.
"""

from __future__ import annotations

import unicodedata

from tally.errors import Code, TallyError

__all__ = ["ALPHABET", "WEIGHTS", "CreditCodeError", "check_character", "check_credit_code"]

#: The 31 characters of GB 32100-2015, in value order.
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
#: The weights of positions 1-17: 3^(i-1) mod 31.
WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
LENGTH = 18

_VALUE = {char: value for value, char in enumerate(ALPHABET)}


class CreditCodeError(TallyError, ValueError):
    """A string that is not a valid unified social credit code. ``reason`` is
    ``"length"``, ``"character"`` or ``"check"``."""

    code = Code.INVALID_PAYLOAD

    LENGTH = "length"
    CHARACTER = "character"
    CHECK = "check"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason

    def to_dict(self) -> dict[str, str]:
        return super().to_dict() | {"reason": self.reason}


def check_character(body: str) -> str:
    """The check character (position 18) of the first 17 characters ``body``, which
    must already be upper-case characters of :data:`ALPHABET`."""
    if len(body) != LENGTH - 1 or any(char not in _VALUE for char in body):
        raise ValueError("expected the 17 leading characters of a credit code")
    total = sum(_VALUE[char] * weight for char, weight in zip(body, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def check_credit_code(code: str) -> str:
    """The normalised code, or :class:`CreditCodeError` saying what is wrong."""
    if not isinstance(code, str):
        raise CreditCodeError(CreditCodeError.CHARACTER, "a credit code is a string")
    normal = unicodedata.normalize("NFKC", code).strip().upper()
    if len(normal) != LENGTH:
        raise CreditCodeError(
            CreditCodeError.LENGTH,
            f"a unified social credit code has {LENGTH} characters, not {len(normal)}",
        )
    for position, char in enumerate(normal, start=1):
        if char not in _VALUE:
            raise CreditCodeError(
                CreditCodeError.CHARACTER,
                f"character {position} ({char!r}) is not one of 0-9 and A-Y without "
                "I, O, S, V, Z (GB 32100-2015)",
            )
    expected = check_character(normal[:-1])
    if normal[-1] != expected:
        raise CreditCodeError(
            CreditCodeError.CHECK,
            f"the check character is {normal[-1]!r}, but the first 17 characters give "
            f"{expected!r}: a character is mistyped",
        )
    return normal
