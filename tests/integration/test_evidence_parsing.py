"""A bundle has one accepted form (issue 14, strict parsing): the verifier refuses what
an auditor found it accepting, with reason ``format``, the same through the Python API
and the command line (exit 2, never a traceback)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tally.evidence.export import export_bundle
from tally.evidence.verify import EvidenceError, parse_bundle, verify_bundle
from tests.integration.test_evidence import populate
from tests.support.chain import Chain


@pytest.fixture
def bundle_text(intl_chain: Chain) -> str:
    index = populate(intl_chain)
    return json.dumps(export_bundle(intl_chain.node.reader, index))


def _refused(data: str | bytes, tmp_path: Path, words: str) -> None:
    with pytest.raises(EvidenceError) as caught:
        verify_bundle(data)
    assert caught.value.reason == "format" and words in caught.value.message
    path = tmp_path / "bundle.json"
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    run = subprocess.run([sys.executable, "-m", "tally", "evidence", "verify", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr and words in run.stderr


def test_the_exported_form_verifies_as_text_and_as_bytes(bundle_text: str) -> None:
    assert verify_bundle(bundle_text).signers
    assert verify_bundle(bundle_text.encode()).signers


def test_a_duplicate_key_is_refused_not_read_either_way(bundle_text: str, tmp_path: Path
                                                        ) -> None:
    """A forged `event` before the real one: a person reading the file sees the first,
    a parser that keeps the last would verify the second."""
    real = json.loads(bundle_text)
    forged = dict(real["event"], index=real["event"]["index"] + 1)
    body = json.dumps({k: v for k, v in real.items() if k != "event"})
    text = body[:-1] + ', "event": ' + json.dumps(forged) + ', "event": ' \
        + json.dumps(real["event"]) + "}"
    _refused(text, tmp_path, "appears twice")


def test_numbers_that_are_not_integers_are_refused(bundle_text: str, tmp_path: Path) -> None:
    real = json.loads(bundle_text)
    size = real["inclusion"]["tree_size"]
    text = bundle_text.replace(f'"tree_size": {size}', f'"tree_size": {size}.0')
    assert text != bundle_text
    _refused(text, tmp_path, "not an integer")
    _refused(bundle_text.replace(f'"tree_size": {size}', '"tree_size": NaN'), tmp_path,
             "not an integer")
    # The same through a dict: 58.0 == 58 in Python, and True == 1.
    for wrong in (float(size), True if size == 1 else size + 0.0):
        real["inclusion"]["tree_size"] = wrong
        with pytest.raises(EvidenceError, match="whole number"):
            verify_bundle(real)


def test_byte_order_marks_and_utf16_are_refused_alike(bundle_text: str, tmp_path: Path
                                                      ) -> None:
    _refused(b"\xef\xbb\xbf" + bundle_text.encode(), tmp_path, "byte-order mark")
    _refused(bundle_text.encode("utf-16"), tmp_path, "byte-order mark")
    _refused(bundle_text.encode("utf-16-le"), tmp_path, "not JSON")  # NULs between bytes
    _refused(b"{\"format\": \"\xff\"}", tmp_path, "not UTF-8")


def test_deep_nesting_and_huge_numbers_are_refused_before_parsing(tmp_path: Path) -> None:
    _refused("[" * 100_000 + "]" * 100_000, tmp_path, "nests deeper")
    _refused('{"format": ' + "9" * 5000 + "}", tmp_path, "not JSON")
    # Brackets inside strings are not nesting.
    assert parse_bundle('{"a": "[[[[[[[[[[[[[[[[[[[[[[[["}') == {"a": "[" * 24}


def test_a_bundle_without_its_transaction_says_so(bundle_text: str) -> None:
    bundle = json.loads(bundle_text)
    signed = verify_bundle(bundle)
    assert "signed by account" in signed.facts[0]
    bundle["transaction"] = None
    verdict = verify_bundle(bundle)
    assert "signed by account" not in verdict.facts[0]
    assert any("does not carry transaction" in f for f in verdict.facts)
