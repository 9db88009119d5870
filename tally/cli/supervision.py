"""``tally node run --alerts rules.toml``: load a rules file and attach an Alerter.

Imported by the ``tally`` command at start: it imports the node and the alerter only
when a node runs with ``--alerts``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tally.cli.common import console, fail

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
