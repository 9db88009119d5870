"""Batch admission: many transactions at once, verified on a thread pool in slices."""

from __future__ import annotations

from tally.errors import Code, TallyError
from tests.support.chain import Chain


def test_a_large_batch_reports_each_transaction_in_its_place(chain: Chain) -> None:
    """A batch spanning several verification slices: every refusal lands at its own
    position with its own code, and every good transaction commits, in nonce order."""
    chain.issue("BOND", 10_000, to="alice")
    bob = chain.addr("bob")
    raws: list[bytes] = []
    expected: dict[int, set[Code]] = {}
    for i in range(700):
        raw = chain.sign("alice", "custody.transfer", {"asset": "BOND", "to": bob, "quantity": 1})
        if i in (5, 300, 699):  # a flipped signature byte, in three different slices
            raw = raw[:-1] + bytes([raw[-1] ^ 1])
            expected[i] = {Code.BAD_SIGNATURE}
            chain._nonces["alice"] -= 1  # the nonce was not used; the next one reuses it
        raws.append(raw)
    raws.insert(400, b"\x00not cbor")
    expected = {(i + 1 if i >= 400 else i): code for i, code in expected.items()}
    expected[400] = {Code.MALFORMED}
    # A copy of a transaction admitted earlier in this batch: a duplicate while the
    # original waits, a replayed nonce once the original's block has committed.
    raws.append(raws[10])
    expected[len(raws) - 1] = {Code.DUPLICATE, Code.NONCE_REPLAYED}

    results = chain.node.submit_many(raws, wait=True)

    assert len(results) == len(raws)
    for position, result in enumerate(results):
        if position in expected:
            assert isinstance(result, TallyError), (position, result)
            assert result.code in expected[position], (position, result)
        else:
            assert not isinstance(result, TallyError) and result.ok, (position, result)
    assert chain.holding("BOND", "bob")["q"] == 700 - 3
    assert chain.holding("BOND", "alice")["q"] == 10_000 - 697
