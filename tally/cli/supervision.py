"""``tally node run --alerts rules.toml``: load a rules file and attach an Alerter; and
``tally supervise report|alerts``, a regulator's reports and alert list.

Imported by the ``tally`` command at start: it imports the node and the alerter only
when a node runs with ``--alerts``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tally.cli.common import (
    DEFAULT_URL,
    UrlOpt,
    call,
    console,
    fail,
    open_client,
    print_receipt,
    propose,
    transact,
)

if TYPE_CHECKING:
    from tally.node import Node
    from tally.supervision.alerts import Alerter
    from tally.supervision.rules import Rule


def load_or_fail(path: Path) -> list[Rule]:
    """The rules of ``path``, or exit 2 with the file's error (before the node starts)."""
    from tally.supervision.rules import RulesError, load_rules

    try:
        return load_rules(path)
    except RulesError as exc:
        fail(f"--alerts: {exc.message}", 2)


def attach(node: Node, rules: list[Rule], path: Path) -> Alerter:
    """An Alerter on ``node`` storing into ``<data_dir>/alerts.sqlite``."""
    from tally.supervision.alerts import Alerter

    alerter = Alerter.attach(node, rules)
    console.print(f"Alerts: {len(rules)} rule(s) from {path}, evaluated off the commit path "
                  f"into {alerter.alerts.path} (API: /v1/alerts)")
    return alerter


# --- tally supervise ------------------------------------------------------------------------

supervise_app = typer.Typer(help="A regulator's tools: reports of a period and alerts.",
                            no_args_is_help=True)


@supervise_app.command("report")
def report_cmd(
    first: Annotated[int, typer.Option("--from", help="the first block of the period")],
    last: Annotated[int, typer.Option("--to", help="the last block of the period")],
    out: Annotated[Path, typer.Option(help="directory for report.json and the CSV tables")] =
    Path("report"),
    url: UrlOpt = DEFAULT_URL,
) -> None:
    """Write a regulator's report of blocks FROM to TO: activity by member and asset
    class, interventions, sandboxes and alerts (report.json and one CSV per table).

    Example: tally supervise report --from 1 --to 5000 --out q4-report"""
    from tally.errors import NotFound
    from tally.supervision.report import build_report, write_report

    try:
        with open_client(url) as client:
            try:
                alerts = [a.model_dump() for a in client.alerts(limit=1000)]
            except NotFound:  # the node runs no alerter
                alerts = []
            report = build_report(client, first, last, alerts)
    except ValueError as exc:
        fail(str(exc), 2)
    except Exception as exc:  # a refusal or an unreachable node
        fail(f"cannot read the chain: {exc}")
    for path in write_report(report, out):
        console.print(f"wrote {path}")


@supervise_app.command("alerts")
def alerts_cmd(status: Annotated[str, typer.Option(help="open, acknowledged or all")] = "open",
               url: UrlOpt = DEFAULT_URL) -> None:
    """List the node's alerts (the node runs with --alerts).

    Example: tally supervise alerts --status open"""
    with open_client(url) as client:
        alerts = call(client.alerts, None if status == "all" else status)
    for alert in alerts:
        console.print(f"#{alert.id} h{alert.height} {alert.rule} [{alert.status}]: "
                      f"{alert.message}")


KeyOpt = Annotated[Path, typer.Option("--key", help="the regulator's key file")]
ReasonCode = Annotated[str, typer.Option(
    "--reason-code", help="COURT_ORDER, AML, SANCTIONS, FRAUD, INVESTIGATION, "
                          "REGULATOR_ORDER or OTHER")]
Reason = Annotated[str, typer.Option(help="why, in words (recorded in the event)")]


@supervise_app.command("freeze")
def freeze_cmd(asset: str, key: KeyOpt, reason_code: ReasonCode, reason: Reason,
               url: UrlOpt = DEFAULT_URL) -> None:
    """Freeze every unit of ASSET (asset.freeze): no move until it is unfrozen.

    Example: tally supervise freeze BOND-2030 --reason-code AML --reason "case 17" --key reg.json"""
    print_receipt(transact(url, key, lambda a: a.send("asset.freeze", {
        "asset": asset, "reason_code": reason_code, "reason": reason})))


@supervise_app.command("unfreeze")
def unfreeze_cmd(asset: str, key: KeyOpt, reason_code: ReasonCode, reason: Reason,
                 url: UrlOpt = DEFAULT_URL) -> None:
    """Lift the freeze of ASSET (asset.unfreeze).

    Example: tally supervise unfreeze BOND-2030 --reason-code AML --reason closed --key reg.json"""
    print_receipt(transact(url, key, lambda a: a.send("asset.unfreeze", {
        "asset": asset, "reason_code": reason_code, "reason": reason})))


@supervise_app.command("force-transfer")
def force_transfer_cmd(
        asset: str, key: KeyOpt, reason_code: ReasonCode, reason: Reason,
        holder: Annotated[str, typer.Option(help="the account whose units move")],
        to: Annotated[str, typer.Option(help="the account that receives them")],
        quantity: Annotated[int, typer.Option(help="units")],
        order: Annotated[Path, typer.Option(help="the court order's document; its SHA-256 is "
                                                 "attested")],
        url: UrlOpt = DEFAULT_URL) -> None:
    """Move units of ASSET on a court order (custody.force_transfer), attesting the
    order's hash in the same transaction.

    Example: tally supervise force-transfer BOND-2030 --holder 3f1c… --to 8a2e… --quantity 300
    --order judgment.pdf --reason-code COURT_ORDER --reason "(2026) Hu 74" --key reg.json"""
    import hashlib

    try:
        digest = hashlib.sha256(order.read_bytes()).digest()
    except OSError as exc:
        fail(f"cannot read {order}: {exc}", 2)
    print_receipt(transact(url, key, lambda a: a.send("custody.force_transfer", {
        "asset": asset, "holder": holder, "to": to, "quantity": quantity,
        "order_hash": digest, "reason_code": reason_code, "reason": reason})))


@supervise_app.command("sandbox")
def sandbox_cmd(
        contract: str, key: Annotated[Path, typer.Option("--key", help="a seat holder's key")],
        close: Annotated[str | None, typer.Option(
            help="end the sandbox: graduate or close (otherwise: open one)")] = None,
        max_per_call: Annotated[int, typer.Option(help="units one call may move")] = 0,
        max_total: Annotated[int, typer.Option(help="units all calls may move")] = 0,
        participant: Annotated[list[str] | None, typer.Option(
            help="an account that may call (repeatable)")] = None,
        end_height: Annotated[int, typer.Option(help="the height the trial ends")] = 0,
        url: UrlOpt = DEFAULT_URL) -> None:
    """Propose a sandbox for CONTRACT (sandbox.open; a regulator must vote for it), or
    its end with --close graduate|close (sandbox.close).

    Example: tally supervise sandbox pilot --max-per-call 100 --max-total 1000
    --participant 3f1c… --end-height 90000 --key bank-admin.json"""
    if close is not None:
        propose(url, key, "sandbox.close", None, contract=contract, outcome=close)
        return
    propose(url, key, "sandbox.open", None, contract=contract, max_per_call=max_per_call,
            max_total=max_total, participants=list(participant or []),
            end_height=end_height)
