"""Shared fixtures: a fresh embedded node per test, for each crypto suite, and the same
node served over HTTP. The helpers themselves live in tests/support/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api import serve
from tests.support.chain import Chain
from tests.support.openssl_ca import OpensslPki


@pytest.fixture(params=["intl", "gm"])
def suite_name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def chain(tmp_path: Path, suite_name: str) -> Iterator[Chain]:
    c = Chain(tmp_path, suite_name)
    yield c
    c.stop()


@pytest.fixture
def intl_chain(tmp_path: Path) -> Iterator[Chain]:
    c = Chain(tmp_path, "intl")
    yield c
    c.stop()


@pytest.fixture
def api(chain: Chain) -> Iterator[tuple[Chain, str]]:
    """The ``chain`` fixture's node, served by the real API on a loopback port."""
    with serve(chain.node) as url:
        yield chain, url


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> OpensslPki:
    """CAs and certificates made with the ``openssl`` command line, kept for the session
    (each openssl run costs ~0.1 s; tests/support/openssl_ca.py)."""
    return OpensslPki(tmp_path_factory.mktemp("pki"))
