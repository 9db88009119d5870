"""The standalone verifier stays small enough for an auditor to read in an hour: at most
500 lines of code (blank lines, comments and docstrings not counted; decision 0024)."""

from __future__ import annotations

import ast
from pathlib import Path

STANDALONE = Path(__file__).resolve().parents[2] / "verifier" / "tally_verify"
BUDGET = 500


def code_lines(source: str) -> int:
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) \
                and ast.get_docstring(node) is not None:
            first = node.body[0]
            docstrings.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return sum(1 for number, line in enumerate(source.splitlines(), 1)
               if line.strip() and not line.strip().startswith("#") and number not in docstrings)


def test_the_verifier_is_within_its_budget() -> None:
    total = sum(code_lines(path.read_text()) for path in sorted(STANDALONE.glob("*.py")))
    assert 0 < total <= BUDGET, f"tally_verify has {total} lines of code; the budget is {BUDGET}"


def test_the_count_skips_only_what_is_not_code() -> None:
    source = '"""Module doc."""\n\n# a comment\ndef f():\n    """Doc\n    two."""\n    return 1\n'
    assert code_lines(source) == 2
