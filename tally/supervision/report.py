"""A regulator's report of a period: ``tally supervise report --from H1 --to H2``.

It reads the chain through the API, as a regulator's own tools would (with its key, once
the node requires authenticated access), and writes one JSON document and CSV tables:

* **activity** by member and asset class: events and units moved (transfers, issues,
  redemptions, pledges and their releases and enforcements, forced transfers), the
  member being the acting account's: the sender's, or for a forced transfer the
  regulator's (``unregistered`` for a chain without members);
* **interventions**: every freeze and unfreeze of holdings, assets and accounts, forced
  transfer, closure, recovery and revocation, with who, why (reason code) and the
  event's log index (its evidence: ``tally evidence export``);
* **sandboxes**: each trial's opening, calls (count and units) and end in the period;
* **alerts** raised in the period, when the node runs an alerter.

Every figure is counted from the committed events between the first event of block H1
and the last of block H2 (their log sizes bound the range), so two reports of the same
period agree.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tally.errors import TallyError

MOVES = ("asset.issue", "asset.redeem", "custody.transfer", "custody.pledge",
         "custody.release", "custody.enforce", "custody.force_transfer")
INTERVENTIONS = ("custody.freeze", "custody.unfreeze", "asset.freeze", "asset.unfreeze",
                 "custody.force_transfer", "account.freeze", "account.unfreeze",
                 "account.close", "account.recover", "cert.revoke")
SANDBOX = ("sandbox.open", "sandbox.call", "sandbox.close")
PAGE = 1000


def events_between(client: Any, first: int, last: int) -> Iterator[Any]:
    """The committed events of blocks ``first`` to ``last``, in log order."""
    start = 0 if first <= 1 else client.block(first - 1).header.log_size
    end = client.block(last).header.log_size
    after = start - 1
    while after + 1 < end:
        page = client.events(after, min(PAGE, end - after - 1))
        if not page:
            return
        for event in page:
            if event.log_index >= end:
                return
            yield event
        after = page[-1].log_index


class _Lookups:
    """Members of accounts and classes of assets, each asked once."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.members: dict[str | None, str] = {None: "none"}
        self.classes: dict[str | None, str] = {None: "none"}

    def member(self, address: str | None) -> str:
        if address not in self.members:
            try:
                self.members[address] = self.client.identity(address).member
            except TallyError:
                self.members[address] = "unregistered"
        return self.members[address]

    def asset_class(self, asset: str | None) -> str:
        if asset not in self.classes:
            try:
                self.classes[asset] = self.client.asset(asset).asset_class
            except TallyError:
                self.classes[asset] = "unknown"
        return self.classes[asset]


def build_report(client: Any, first: int, last: int,
                 alerts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The report of blocks ``first`` to ``last`` (see the module docstring)."""
    if not 1 <= first <= last:
        raise ValueError("the period is --from H1 --to H2 with 1 <= H1 <= H2")
    lookups = _Lookups(client)
    activity: dict[tuple[str, str], dict[str, int]] = {}
    interventions: list[dict[str, Any]] = []
    sandboxes: dict[str, dict[str, Any]] = {}
    for e in events_between(client, first, last):
        if e.type in MOVES:
            actor = e.details.get("by") if e.type == "custody.force_transfer" else e.sender
            row = activity.setdefault((lookups.member(actor), lookups.asset_class(e.asset)),
                                      {"events": 0, "units": 0})
            row["events"] += 1
            row["units"] += e.quantity
        if e.type in INTERVENTIONS:
            interventions.append({
                "log_index": e.log_index, "height": e.height, "type": e.type,
                "asset": e.asset, "from": e.sender, "to": e.to, "quantity": e.quantity,
                "reason_code": e.details.get("reason_code", ""),
                "reason": e.details.get("reason", ""), "by": e.details.get("by", "")})
        if e.type in SANDBOX:
            contract = e.details.get("contract", "")
            trial = sandboxes.setdefault(contract, {"contract": contract, "calls": 0,
                                                    "units": 0, "opened": None,
                                                    "ended": None, "outcome": None})
            if e.type == "sandbox.open":
                trial["opened"] = e.height
            elif e.type == "sandbox.call":
                trial["calls"] += 1
                trial["units"] += e.quantity
            else:
                trial["ended"], trial["outcome"] = e.height, e.details.get("outcome")
    raised = [a for a in alerts or [] if first <= a.get("height", 0) <= last]
    return {
        "period": {"from": first, "to": last},
        "activity": [{"member": m, "asset_class": c, **row}
                     for (m, c), row in sorted(activity.items())],
        "interventions": interventions,
        "sandboxes": [sandboxes[name] for name in sorted(sandboxes)],
        "alerts": raised,
    }


def write_report(report: dict[str, Any], out: Path) -> list[Path]:
    """``report.json`` and one CSV per table in ``out``; the files written."""
    import json

    out.mkdir(parents=True, exist_ok=True)
    written = [out / "report.json"]
    written[0].write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    for table in ("activity", "interventions", "sandboxes", "alerts"):
        rows = report[table]
        path = out / f"{table}.csv"
        with path.open("w", newline="") as f:
            if rows:
                writer = csv.DictWriter(f, fieldnames=sorted({k for r in rows for k in r}))
                writer.writeheader()
                writer.writerows(rows)
        written.append(path)
    return written
