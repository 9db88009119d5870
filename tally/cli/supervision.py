"""``tally node run --alerts rules.toml``: load a rules file and attach an Alerter; and
``tally supervise report|alerts``, a regulator's reports and alert list.

Imported by the ``tally`` command at start: it imports the node and the alerter only
when a node runs with ``--alerts``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tally.cli.common import DEFAULT_URL, UrlOpt, call, console, fail, open_client

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
