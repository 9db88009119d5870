"""Protocol versions: a chain moves from one version's rules to the next at a height the
committee names, old blocks replay by the rules that made them, and the chain parameters
live in state from version 2 on (tally.exec.upgrade, tally.exec.rules)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from tally import codec
from tally.audit import audit_ledger
from tally.errors import Code, TallyError
from tally.exec.rules import rules_for
from tally.exec.upgrade import PARAMS_KEY, PROTOCOL_KEY
from tally.genesis import Genesis, Params
from tally.protocol.header import BlockHeader, HeaderError
from tally.protocol.versions import KNOWN_VERSIONS, LATEST_VERSION
from tests.support.chain import Chain
from tests.support.replay import recorded_blocks, replay_under_seeds


@pytest.fixture
def v1_chain(tmp_path: Path, suite_name: str) -> Iterator[Chain]:
    c = Chain(tmp_path, suite_name, protocol_version=1)
    yield c
    c.stop()


def _header(chain: Chain, height: int) -> BlockHeader:
    return chain.node.reader.header(height)


def _refusal(chain: Chain, name: str, kind: str, payload: dict, **kw) -> tuple[str, str]:
    """The code and message refusing a transaction, at admission (a payload that is wrong
    whatever the state) or in its block (wrong for the state it met)."""
    try:
        receipt = chain.send(name, kind, payload, **kw)
    except TallyError as exc:
        return exc.code, exc.message
    assert not receipt.ok, receipt
    return receipt.code, receipt.message


def _upgrade(chain: Chain, version: int, at: int):
    return chain.ok("admin", "gov.propose", {"action": "protocol.upgrade", "version": version,
                                             "height": at})


def test_a_version_1_chain_keeps_the_formats_it_had(v1_chain: Chain) -> None:
    chain = v1_chain
    assert "protocol_version" not in chain.genesis.to_doc()
    chain.issue("BOND", 100)
    row = chain.node.reader.block_row(1)
    assert row is not None
    assert b"version" not in row.header  # the header map has exactly the old keys
    assert _header(chain, 1).version == 1
    assert chain.node.reader.value(PROTOCOL_KEY) is None and chain.node.reader.value(PARAMS_KEY) is None
    # params.set is not a version-1 action
    code, message = _refusal(chain, "admin", "gov.propose", {"action": "params.set",
                                                             "max_expiry_window": 50})
    assert code == Code.INVALID_PAYLOAD and "params.set" not in message.split(":", 1)[1]


def test_an_upgrade_switches_at_the_named_height_and_replays(v1_chain: Chain,
                                                             tmp_path: Path) -> None:
    chain = v1_chain
    chain.issue("BOND", 10_000, to="alice")                                   # height 1
    at = chain.node.ledger.height + 4
    receipt = _upgrade(chain, 2, at)                                           # height 2
    upgrade_event = chain.node.reader.events(after=receipt.events[0] - 1, limit=2)
    assert {e["type"] for e in upgrade_event} >= {"protocol.upgrade"}
    while chain.node.ledger.height < at + 2:
        chain.ok("alice", "custody.transfer", {"asset": "BOND", "to": chain.addr("bob"),
                                               "quantity": 1})
    versions = {h: _header(chain, h).version for h in range(1, chain.node.ledger.height + 1)}
    assert all(v == 1 for h, v in versions.items() if h < at)
    assert all(v == 2 for h, v in versions.items() if h >= at)
    assert chain.node.reader.value(PROTOCOL_KEY) == {"version": 2}
    assert chain.node.reader.value(PARAMS_KEY) == chain.genesis.params.to_doc()
    assert chain.node.ledger.executor.rules.version == 2

    # Version 2 rules: the committee changes a parameter, and admission follows it.
    chain.ok("admin", "gov.propose", {"action": "params.set", "max_expiry_window": 20})
    assert chain.node.ledger.executor.params.max_expiry_window == 20
    code, message = _refusal(chain, "alice", "custody.transfer",
                             {"asset": "BOND", "to": chain.addr("bob"), "quantity": 1},
                             expiry=chain.node.ledger.height + 50, nonce=chain._nonces["alice"])
    assert code == Code.EXPIRED and "20 blocks" in message
    within = chain.send("alice", "custody.transfer", {"asset": "BOND", "to": chain.addr("bob"),
                                                      "quantity": 1},
                        expiry=chain.node.ledger.height + 10)
    assert within.ok, within

    # Every block replays, on fresh ledgers under other hash seeds, to the same hashes and
    # roots, each by the rules of its own version.
    blocks, expected = recorded_blocks(chain.node)
    assert {f["version"] for f in expected} == {1, 2}
    for replayed in replay_under_seeds(chain.genesis, blocks, tmp_path):
        assert replayed == expected
    # ... and the offline audit recomputes the whole chain across the version change.
    report = audit_ledger(chain.data_dir / "chain.sqlite", chain.genesis)
    assert report.problems == []


def test_an_upgrade_is_refused_unless_forward_and_ahead(chain: Chain) -> None:
    height = chain.node.ledger.height
    code, message = _refusal(chain, "admin", "gov.propose", {
        "action": "protocol.upgrade", "version": LATEST_VERSION, "height": height + 5})
    assert code == Code.INVALID_PAYLOAD and "later" in message
    code, _ = _refusal(chain, "admin", "gov.propose", {
        "action": "protocol.upgrade", "version": LATEST_VERSION + 1, "height": height + 5})
    assert code == Code.INVALID_PAYLOAD
    code, _ = _refusal(chain, "alice", "gov.propose", {
        "action": "protocol.upgrade", "version": LATEST_VERSION, "height": height + 5})
    assert code == Code.UNAUTHORISED
    assert chain.node.reader.value(PROTOCOL_KEY) == {"version": LATEST_VERSION}


def test_an_upgrade_height_in_the_past_is_refused(v1_chain: Chain) -> None:
    chain = v1_chain
    chain.issue("BOND", 10)
    code, message = _refusal(chain, "admin", "gov.propose", {
        "action": "protocol.upgrade", "version": 2, "height": chain.node.ledger.height})
    assert code == Code.INVALID_PAYLOAD and "above the current height" in message
    assert chain.node.reader.value(PROTOCOL_KEY) is None


@pytest.mark.parametrize("change", [{"max_tx_bytes": 10}, {"max_block_txs": 0},
                                    {"max_expiry_window": True}, {"nonsense": 5}, {}])
def test_params_out_of_bounds_are_refused_and_change_nothing(intl_chain: Chain,
                                                             change: dict) -> None:
    before = intl_chain.node.reader.value(PARAMS_KEY)
    code, _ = _refusal(intl_chain, "admin", "gov.propose", {"action": "params.set", **change})
    assert code == Code.INVALID_PAYLOAD
    assert intl_chain.node.reader.value(PARAMS_KEY) == before


def test_genesis_names_only_known_versions() -> None:
    doc = {"chain_id": "c", "suite": "intl", "genesis_time_ms": 0,
           "validators": [{"name": "v", "public_key": "00" * 32, "power": 1}]}
    assert Genesis.from_doc(doc).protocol_version == 1
    assert Genesis.from_doc(doc | {"protocol_version": 2}).protocol_version == 2
    for bad in (1, 99, "2", None):
        with pytest.raises(ValueError):
            Genesis.from_doc(doc | {"protocol_version": bad})
    with pytest.raises(ValueError):
        Genesis.from_doc(doc | {"params": {"max_tx_bytes": 1}})


def test_every_known_version_composes_without_clashes() -> None:
    for version in KNOWN_VERSIONS:
        rules = rules_for(version)
        assert rules.version == version
        assert {"custody.transfer", "gov.propose", "contract.call"} <= set(rules.operations)
        assert "protocol.upgrade" in rules.actions
    assert "params.set" not in rules_for(1).actions and "params.set" in rules_for(2).actions
    with pytest.raises(ValueError, match="unknown to this build"):
        rules_for(LATEST_VERSION + 1)


def test_headers_decode_strictly() -> None:
    header = BlockHeader("c", 1, b"p" * 32, 5, b"t" * 32, 0, 0, b"l" * 32, b"s" * 32, 0,
                         b"c" * 32, version=2)
    assert BlockHeader.decode(header.encode()) == header
    v1 = dataclasses.replace(header, version=1)
    assert "version" not in v1.to_doc() and BlockHeader.decode(v1.encode()) == v1
    doc = header.to_doc()
    for broken in ({**doc, "extra": 1}, {k: v for k, v in doc.items() if k != "state"},
                   {**doc, "height": "1"}, {**doc, "version": 1}, {**doc, "version": 0}, [1]):
        with pytest.raises(HeaderError):
            BlockHeader.decode(codec.encode(broken))
    with pytest.raises(HeaderError):
        BlockHeader.decode(b"\xff\x00")


def test_params_default_is_the_genesis_params() -> None:
    assert Params.from_doc(Params().to_doc()) == Params()


STD_USER = '''
from std.checks import is_address


class Probe(Contract):
    @view
    def check(self, text: str):
        return is_address(text)
'''


def test_the_contract_standard_library_comes_with_version_2(tmp_path: Path) -> None:
    for version, expected in ((1, Code.CONTRACT_REJECTED), (2, Code.OK)):
        chain = Chain(tmp_path / f"v{version}", "intl", protocol_version=version)
        try:
            code, message = (Code.OK, "") if version == 2 else _refusal(
                chain, "admin", "gov.propose",
                {"action": "contract.deploy", "name": "probe", "source": STD_USER})
            if version == 2:
                chain.ok("admin", "gov.propose", {"action": "contract.deploy", "name": "probe",
                                                  "source": STD_USER})
                assert chain.node.reader.contract_query("probe", "check", ["ab" * 20]) is True
            assert code == expected, message
            assert version == 2 or "protocol version 2" in message
        finally:
            chain.stop()
