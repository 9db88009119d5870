"""Crypto suites, fixed at genesis: ``intl`` (Ed25519 + SHA-256) and ``gm`` (SM2 + SM3, SM4)."""

from __future__ import annotations

from tally.crypto.suite import PrivateKey, Suite

__all__ = ["PrivateKey", "Suite", "get_suite", "SUITE_NAMES"]

SUITE_NAMES = ("intl", "gm")
_suites: dict[str, Suite] = {}


def get_suite(name: str) -> Suite:
    """The suite called ``name``; raises ``ValueError`` for an unknown name."""
    suite = _suites.get(name)
    if suite is not None:
        return suite
    if name == "intl":
        from tally.crypto.intl import IntlSuite

        suite = IntlSuite()
    elif name == "gm":
        from tally.crypto.gm import GmSuite

        suite = GmSuite()
    else:
        raise ValueError(f"unknown crypto suite {name!r}; known suites: {', '.join(SUITE_NAMES)}")
    _suites[name] = suite
    return suite
