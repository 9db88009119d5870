"""Supervision alerts on a real embedded node: each rule kind fires on the events it is
about and on no others, Python rules, persistence across a restart, acknowledgement,
the API, and the commit path left alone by a slow rule (docs/supervision.md)."""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tally.errors import Code, TallyError
from tally.node import Node
from tally.supervision.alerts import Alerter
from tally.supervision.rules import parse_rules
from tests.support import alert_rules
from tests.support.api import serve
from tests.support.chain import GENESIS_TIME, Chain
from tests.support.consortium import Consortium
from tests.support.openssl_ca import OpensslPki


@pytest.fixture
def c(tmp_path: Path) -> Iterator[Chain]:
    chain = Chain(tmp_path, "intl")
    yield chain
    chain.stop()


def alerter_on(chain: Chain, text: str, **kw: object) -> Alerter:
    return Alerter.attach(chain.node, parse_rules(text), **kw)  # type: ignore[arg-type]


def settle(chain: Chain, alerter: Alerter) -> None:
    assert alerter.wait_for(chain.node.ledger.height, 30), "alerts did not catch up"


def by_rule(alerter: Alerter) -> dict[str, list[tuple[int, list[int]]]]:
    out: dict[str, list[tuple[int, list[int]]]] = {}
    for a in alerter.alerts.list(limit=1000):
        out.setdefault(a.rule, []).append((a.height, a.events))
    return out


RULES = """
[[rule]]
name = "large-bond"
kind = "large_transfer"
asset = "BOND"
min_quantity = 500

[[rule]]
name = "large-receivable"
kind = "large_transfer"
asset_class = "receivable"
min_quantity = 50

[[rule]]
name = "busy"
kind = "velocity"
max_transfers = 2
window_blocks = 3

[[rule]]
name = "bond-concentration"
kind = "concentration"
asset = "BOND"
max_share_bps = 5000

[[rule]]
name = "watch-bob"
kind = "flagged_party"
accounts = ["{bob}"]

[[rule]]
name = "redeems"
kind = "python"
module = "tests.support.alert_rules:redeems"
"""


def test_each_rule_kind_fires_on_its_events_only(c: Chain) -> None:
    alerter = alerter_on(c, RULES.replace("{bob}", c.addr("bob")))
    try:
        c.issue("BOND", 1000)                                       # h1, event 0
        c.issue("INV", 100, asset_class="receivable")               # h2, event 1
        send = {"asset": "BOND", "quantity": 600, "to": c.addr("alice")}
        c.ok("issuer", "custody.transfer", send)                    # h3, event 2
        c.ok("issuer", "custody.transfer", send | {"quantity": 10, "to": c.addr("carol")})
        c.ok("issuer", "custody.transfer", send | {"quantity": 10, "to": c.addr("bob")})
        c.ok("issuer", "custody.transfer", {"asset": "INV", "quantity": 60,    # h6, event 5
                                            "to": c.addr("carol")})
        c.ok("issuer", "custody.transfer", {"asset": "INV", "quantity": 40,    # h7, event 6
                                            "to": c.addr("carol")})
        c.ok("alice", "asset.redeem", {"asset": "BOND", "quantity": 5})        # h8, event 7
        settle(c, alerter)
        found = by_rule(alerter)
        assert found["large-bond"] == [(3, [2])]
        assert found["large-receivable"] == [(6, [5])]
        # issuer sent at h3, h4, h5 (3 in 3 blocks), then h6 and h7: over 2 from h5 on.
        assert found["busy"] == [(5, [4]), (6, [5]), (7, [6])]
        # all of it at issue, then alice's 60 %; carol's and bob's 1 % are not.
        assert found["bond-concentration"] == [(1, [0]), (3, [2])]
        assert found["watch-bob"] == [(5, [4])]
        assert found["redeems"] == [(8, [7])]
        assert "supply now 995" in alerter.alerts.list(rule="redeems")[0].message
        assert all(a.status == "open" and a.kind != "error" for a in alerter.alerts.list())
        assert alerter.fell_behind == 0
    finally:
        alerter.stop()


def test_frozen_party_and_suspended_member(tmp_path: Path, pki: OpensslPki) -> None:
    c = Consortium(tmp_path, "intl", pki)
    alerter = alerter_on(c, '[[rule]]\nname = "frozen"\nkind = "frozen_party"\n')
    try:
        c.issue()
        c.register("alice")
        c.ok("issuer", "custody.transfer", {"asset": "BOND", "to": c.addr("alice"),
                                            "quantity": 7})
        settle(c, alerter)  # alice was active: evaluated before she is frozen
        c.ok("regulator", "account.freeze", {"account": c.addr("alice")})
        moved = c.ok("issuer", "custody.transfer", {"asset": "BOND", "to": c.addr("alice"),
                                                    "quantity": 3})
        c.ok("issuer", "custody.transfer", {"asset": "BOND", "to": c.addr("broker"),
                                            "quantity": 3})
        settle(c, alerter)
        alerts = alerter.alerts.list()
        assert [(a.height, a.events) for a in alerts] == [(moved.height, moved.events)]
        assert c.addr("alice") in alerts[0].message and "frozen" in alerts[0].message
    finally:
        alerter.stop()
        c.stop()


def test_a_rule_that_raises_is_an_alert_and_the_others_go_on(c: Chain) -> None:
    alerter = alerter_on(c, """
[[rule]]
name = "broken"
kind = "python"
module = "tests.support.alert_rules:broken"
[[rule]]
name = "big"
kind = "large_transfer"
min_quantity = 1
""")
    try:
        c.issue()
        c.ok("issuer", "custody.transfer", {"asset": "BOND", "to": c.addr("bob"),
                                            "quantity": 1})
        settle(c, alerter)
        assert [(a.rule, a.kind) for a in alerter.alerts.list()] == [
            ("broken", "error"), ("broken", "error"), ("big", "large_transfer")]
        assert "this rule is broken" in alerter.alerts.list()[0].message
    finally:
        alerter.stop()


def test_alerts_persist_and_a_restarted_alerter_catches_up(c: Chain) -> None:
    rules = f'[[rule]]\nname = "watch"\nkind = "flagged_party"\naccounts = ["{c.addr("bob")}"]\n'
    alerter = alerter_on(c, rules)
    c.issue()
    first = c.ok("issuer", "custody.transfer", {"asset": "BOND", "to": c.addr("bob"),
                                                "quantity": 1})
    settle(c, alerter)
    alerter.alerts.acknowledge(1, "supervisor-1")
    alerter.stop()
    # A block committed while no alerter runs is evaluated when one starts again.
    missed = c.ok("issuer", "custody.transfer", {"asset": "BOND", "to": c.addr("bob"),
                                                 "quantity": 2})
    c.node.stop()
    clock = itertools.count(GENESIS_TIME + 1_000_000, 1000)
    c.node = Node(c.data_dir, c.genesis, c.validator, clock_ms=lambda: next(clock)).start()
    again = alerter_on(c, rules)
    try:
        settle(c, again)
        alerts = again.alerts.list()
        assert [(a.height, a.events, a.status) for a in alerts] == [
            (first.height, first.events, "acknowledged"), (missed.height, missed.events, "open")]
        assert alerts[0].acknowledged_by == "supervisor-1"
        assert (c.data_dir / "alerts.sqlite").exists()
    finally:
        again.stop()


def test_acknowledgement_and_filters(c: Chain) -> None:
    alerter = alerter_on(c, '[[rule]]\nname = "all"\nkind = "large_transfer"\nmin_quantity = 1\n')
    try:
        c.issue()
        for q in (1, 2, 3):
            c.ok("issuer", "custody.transfer", {"asset": "BOND", "to": c.addr("bob"),
                                                "quantity": q})
        settle(c, alerter)
        store = alerter.alerts
        acked = store.acknowledge(2, "regulator-a")
        assert acked.status == "acknowledged" and acked.acknowledged_by == "regulator-a"
        assert acked.acknowledged_at is not None
        with pytest.raises(TallyError) as refused:
            store.acknowledge(2, "regulator-b")
        assert refused.value.code == Code.DUPLICATE and "regulator-a" in refused.value.message
        with pytest.raises(TallyError) as missing:
            store.acknowledge(99, "x")
        assert missing.value.code == Code.NOT_FOUND
        assert [a.id for a in store.list(status="open")] == [1, 3]
        assert [a.id for a in store.list(status="acknowledged")] == [2]
        assert [a.height for a in store.list(from_height=3)] == [3, 4]
        assert store.list(rule="other") == []
        assert [a.id for a in store.list(after=1, limit=1)] == [2]
    finally:
        alerter.stop()


def _commit_latencies(c: Chain, n: int) -> list[float]:
    out = []
    for i in range(n):
        start = time.perf_counter()
        c.ok("issuer", "custody.transfer", {"asset": "BOND", "to": c.addr("bob"),
                                            "quantity": i + 1})
        out.append(time.perf_counter() - start)
    return out


def test_a_slow_rule_does_not_slow_the_commits(c: Chain) -> None:
    c.issue()
    without = statistics.median(_commit_latencies(c, 8))
    alerter = alerter_on(c, '[[rule]]\nname = "slow"\nkind = "python"\n'
                            'module = "tests.support.alert_rules:slow"\n', queue_blocks=2)
    try:
        start_height = c.node.ledger.height
        with_slow = _commit_latencies(c, 8)
        # Each commit would take the rule's 0.2 s if the rule ran on the commit path.
        assert statistics.median(with_slow) < alert_rules.SLOW_S / 2, (without, with_slow)
        assert statistics.median(with_slow) < without * 3 + 0.02, (without, with_slow)
        assert alerter.evaluated_height < c.node.ledger.height  # it is behind, commits not
        settle(c, alerter)
        heights = [a.height for a in alerter.alerts.list(limit=1000)]
        assert heights == list(range(1, c.node.ledger.height + 1))
        assert alerter.fell_behind > 0  # a queue of 2: the rest was read from the reader
        assert c.node.ledger.height == start_height + 8
    finally:
        alerter.stop()


def test_api(c: Chain) -> None:
    alerter = alerter_on(c, '[[rule]]\nname = "all"\nkind = "large_transfer"\nmin_quantity = 1\n')
    try:
        c.issue()
        c.ok("issuer", "custody.transfer", {"asset": "BOND", "to": c.addr("bob"), "quantity": 5})
        c.ok("issuer", "custody.transfer", {"asset": "BOND", "to": c.addr("bob"), "quantity": 6})
        settle(c, alerter)
        with serve(c.node, alerter=alerter) as url:
            listed = httpx.get(f"{url}/v1/alerts").json()
            assert [(a["id"], a["rule"], a["kind"], a["height"], a["events"], a["status"])
                    for a in listed] == [(1, "all", "large_transfer", 2, [1], "open"),
                                         (2, "all", "large_transfer", 3, [2], "open")]
            one = httpx.get(f"{url}/v1/alerts/2").json()
            assert one == listed[1]
            ack = httpx.post(f"{url}/v1/alerts/2/ack", json={"by": "examiner"})
            assert ack.status_code == 200 and ack.json()["status"] == "acknowledged"
            assert ack.json()["acknowledged_by"] == "examiner"
            twice = httpx.post(f"{url}/v1/alerts/2/ack", json={"by": "someone"})
            assert twice.status_code == 409 and "examiner" in twice.json()["message"]
            assert httpx.get(f"{url}/v1/alerts/9").status_code == 404
            assert httpx.post(f"{url}/v1/alerts/1/ack", json={}).status_code == 422
            open_ = httpx.get(f"{url}/v1/alerts", params={"status": "open"}).json()
            assert [a["id"] for a in open_] == [1]
            assert httpx.get(f"{url}/v1/alerts", params={"from_height": 3}).json()[0]["id"] == 2
            assert httpx.get(f"{url}/v1/alerts", params={"status": "x"}).status_code == 422
            # The evidence of an alert's event exports as any other (tally evidence export).
            event = listed[0]["events"][0]
            assert httpx.get(f"{url}/v1/evidence/{event}").status_code == 200
        with serve(c.node) as url:
            answer = httpx.get(f"{url}/v1/alerts")
            assert answer.status_code == 404 and "--alerts" in answer.json()["message"]
    finally:
        alerter.stop()


def test_alerts_are_for_regulators_on_an_authenticated_node(tmp_path: Path,
                                                            pki: OpensslPki) -> None:
    """With authenticated access, only a regulator reads and acknowledges alerts, and the
    acknowledgement names the regulator that signed it, whatever the body says."""
    from tally.errors import TallyError
    from tally.sdk import TallyClient

    c = Consortium(tmp_path, "intl", pki)
    alerter = alerter_on(c, '[[rule]]\nname = "big"\nkind = "large_transfer"\n'
                            'min_quantity = 100\n')
    try:
        c.register("alice")
        c.issue("BOND", 500, to="alice")
        c.ok("alice", "custody.transfer", {"asset": "BOND", "to": c.addr("issuer"),
                                           "quantity": 200})
        settle(c, alerter)
        with serve(c.node, access="authenticated", alerter=alerter) as url:
            assert httpx.get(f"{url}/v1/alerts").status_code == 401
            with TallyClient(url, signer=c.keys["alice"]) as alice:
                with pytest.raises(TallyError) as refused:
                    alice.alerts()
                assert refused.value.code == "FORBIDDEN"
            with TallyClient(url, signer=c.keys["regulator"]) as regulator:
                (alert,) = regulator.alerts()
                assert alert.rule == "big" and alert.status == "open"
                acked = regulator.acknowledge_alert(alert.id, by="someone else")
                assert acked.acknowledged_by == c.addr("regulator")
    finally:
        alerter.stop()
        c.stop()
