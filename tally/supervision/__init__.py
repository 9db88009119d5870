"""Supervision for regulators: alert rules evaluated on every committed block, off the
commit path (docs/supervision.md, decision 0031).

* :mod:`tally.supervision.rules`: the rule kinds as data, parsed strictly from a TOML
  rules file, and rules written as Python functions;
* :mod:`tally.supervision.alerts`: the :class:`~tally.supervision.alerts.Alerter`, which
  a node calls after each commit, evaluates the rules on its own thread and stores the
  alerts in ``<data_dir>/alerts.sqlite``.
"""

from tally.supervision.rules import Finding, Rule, RulesError, load_rules, parse_rules

__all__ = ["Finding", "Rule", "RulesError", "load_rules", "parse_rules"]
