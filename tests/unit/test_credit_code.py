"""The unified social credit code (GB 32100-2015): known codes, the check character,
and that every single-character change of a valid code is refused."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tally.errors import Code, TallyError
from tally.identity.credit_code import (
    ALPHABET,
    WEIGHTS,
    CreditCodeError,
    check_character,
    check_credit_code,
)

#: Codes published by their holders (and widely cited as examples).
PUBLISHED = [
    "91350100M000100Y43",  # GB 32100's own worked example, cited in most guides
    "91440300708461136T",  # Shenzhen Tencent Computer Systems Co., Ltd.
]


def test_the_alphabet_and_weights_are_the_standards() -> None:
    assert len(ALPHABET) == 31
    assert not set("IOSVZ") & set(ALPHABET)
    assert WEIGHTS == (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


@pytest.mark.parametrize("code", PUBLISHED)
def test_published_codes_are_valid(code: str) -> None:
    assert check_credit_code(code) == code
    assert check_character(code[:17]) == code[17]


def test_a_check_value_of_31_is_written_as_zero() -> None:
    # 17 characters whose weighted sum is 0 mod 31: 31 - 0 = 31, written "0".
    assert check_character("0" * 17) == "0"
    assert check_credit_code("0" * 18) == "0" * 18


@pytest.mark.parametrize("typed", [
    " 91350100m000100y43\n",
    "９１３５０１００Ｍ０００１００Ｙ４３",  # full-width, as a Chinese input method types it
])
def test_input_is_normalised(typed: str) -> None:
    assert check_credit_code(typed) == "91350100M000100Y43"


@pytest.mark.parametrize(("code", "reason"), [
    ("", CreditCodeError.LENGTH),
    ("91350100M000100Y4", CreditCodeError.LENGTH),
    ("91350100M000100Y433", CreditCodeError.LENGTH),
    ("91350100M000100I43", CreditCodeError.CHARACTER),  # I is not in the alphabet
    ("91350100M0001O0Y43", CreditCodeError.CHARACTER),  # nor O
    ("91350100M000100Y4Z", CreditCodeError.CHARACTER),  # nor Z, even as the check
    ("9135010-M000100Y43", CreditCodeError.CHARACTER),
    ("91350100M000100Y44", CreditCodeError.CHECK),
    ("91350100M000010Y43", CreditCodeError.CHECK),  # two adjacent characters swapped
])
def test_bad_codes_are_refused_with_a_reason(code: str, reason: str) -> None:
    with pytest.raises(CreditCodeError) as caught:
        check_credit_code(code)
    assert caught.value.reason == reason
    assert isinstance(caught.value, TallyError) and caught.value.code is Code.INVALID_PAYLOAD
    assert caught.value.to_dict()["reason"] == reason


def test_a_non_string_is_refused() -> None:
    with pytest.raises(CreditCodeError):
        check_credit_code(91350100)  # type: ignore[arg-type]


bodies = st.text(alphabet=ALPHABET, min_size=17, max_size=17)


@settings(max_examples=200, deadline=None)
@given(body=bodies, data=st.data())
def test_every_single_character_change_is_refused(body: str, data: st.DataObject) -> None:
    code = body + check_character(body)
    assert check_credit_code(code) == code
    position = data.draw(st.integers(0, 17))
    replacement = data.draw(st.characters(codec="utf-8").filter(
        lambda c: unicodedata.normalize("NFKC", c).upper() != code[position]
        and not c.isspace()))
    changed = code[:position] + replacement + code[position + 1:]
    with pytest.raises(CreditCodeError):
        check_credit_code(changed)


@settings(max_examples=20, deadline=None)
@given(body=bodies)
def test_every_substitution_within_the_alphabet_is_refused(body: str) -> None:
    """Exhaustively, for each random code: all 18 × 30 substitutions."""
    code = body + check_character(body)
    for position in range(18):
        for char in ALPHABET:
            if char != code[position]:
                with pytest.raises(CreditCodeError):
                    check_credit_code(code[:position] + char + code[position + 1:])
