"""``tally supervise report``: a regulator's report of a period, read through the API,
with activity by member and asset class, interventions with their reason codes, and the
period's sandboxes; its figures are counted from the committed events of the period."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tally.cli.main import app
from tests.integration.test_sandbox import PILOT
from tests.support.api import serve
from tests.support.consortium import Consortium
from tests.support.openssl_ca import OpensslPki


@pytest.fixture
def c(tmp_path: Path, pki: OpensslPki) -> Iterator[Consortium]:
    chain = Consortium(tmp_path, "intl", pki)
    yield chain
    chain.stop()


def test_a_report_of_a_period(c: Consortium, tmp_path: Path) -> None:
    c.register("alice")
    c.register("bob", member="broker")
    start = c.node.reader.height() + 1
    c.issue("BOND", 1000, to="alice")
    c.ok("alice", "custody.transfer", {"asset": "BOND", "to": c.addr("bob"), "quantity": 100})
    c.ok("bob", "custody.transfer", {"asset": "BOND", "to": c.addr("alice"), "quantity": 40})
    c.ok("regulator", "asset.freeze", {"asset": "BOND", "reason_code": "AML",
                                       "reason": "pattern 3"})
    c.ok("regulator", "asset.unfreeze", {"asset": "BOND", "reason_code": "AML",
                                         "reason": "cleared"})
    c.ok("regulator", "custody.force_transfer", {
        "asset": "BOND", "holder": c.addr("bob"), "to": c.addr("alice"), "quantity": 10,
        "order_hash": hashlib.sha256(b"order").digest(), "reason_code": "COURT_ORDER",
        "reason": "judgment 17"})
    c.vote_through("admin", "contract.deploy", name="pilot", source=PILOT)
    c.vote_through("admin", "role.grant", contract="pilot", role="issuer")
    c.ok("admin", "contract.call", {"contract": "pilot", "method": "start", "args": []})
    c.vote_through("admin", "sandbox.open", voters=("regulator", "broker"), contract="pilot",
                   max_per_call=50, max_total=100, participants=[c.addr("alice")],
                   end_height=c.node.reader.height() + 1000)
    c.ok("alice", "contract.call", {"contract": "pilot", "method": "pay",
                                    "args": [c.addr("bob"), 30]})
    end = c.node.reader.height()
    out = tmp_path / "report"
    with serve(c.node) as url:
        result = CliRunner().invoke(app, ["supervise", "report", "--from", str(start),
                                          "--to", str(end), "--out", str(out), "--url", url])
        assert result.exit_code == 0, result.output
        bad = CliRunner().invoke(app, ["supervise", "report", "--from", "5", "--to", "2",
                                       "--url", url])
        assert bad.exit_code == 2
    report = json.loads((out / "report.json").read_text())
    assert report["period"] == {"from": start, "to": end}
    activity = {(r["member"], r["asset_class"]): r for r in report["activity"]}
    assert activity[("bank", "security")]["units"] == 1000 + 100  # the issue and alice's sale
    assert activity[("broker", "security")] == {"member": "broker", "asset_class": "security",
                                                "events": 1, "units": 40}
    assert activity[("regulator", "security")]["units"] == 10  # the court order
    kinds = [(i["type"], i["reason_code"]) for i in report["interventions"]]
    assert kinds == [("asset.freeze", "AML"), ("asset.unfreeze", "AML"),
                     ("custody.force_transfer", "COURT_ORDER")]
    (trial,) = report["sandboxes"]
    assert trial["contract"] == "pilot" and trial["calls"] == 1 and trial["units"] == 30
    assert (out / "interventions.csv").read_text().count("\n") == 4  # header and 3 rows
