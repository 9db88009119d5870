"""Alert rules: the rule kinds as data, parsed strictly from a TOML rules file.

A rules file is a list of ``[[rule]]`` tables (docs/supervision.md has an example)::

    [[rule]]
    name = "large-bond-moves"      # unique; names the alerts it raises
    kind = "large_transfer"        # one of KINDS
    asset = "BOND"                 # the kind's own fields
    min_quantity = 1000

Every rule evaluates one committed block at a time: :meth:`Rule.evaluate` takes the
block's events (dicts as :meth:`ChainReader.events` returns them, in log order) and the
node's reader, and returns :class:`Finding`\\ s, each naming the events (by log index)
that make it. An evaluation is deterministic given the events and the committed state it
reads, and bounded: at most :data:`MAX_FINDINGS` findings per rule and block, and a
rule's own memory (the velocity windows) is bounded in accounts and entries.

State a rule reads (holdings, account and member status) is the committed state when the
rule runs, the block itself or, when alerting lags, a few blocks later: alerting never
holds up the commit to read the state exactly at the block (decision 0031).

Python rules (``kind = "python"``) are the operator's own code, imported by path and run
with the node's privileges, inside the node's process: review them as the node's code.
"""

from __future__ import annotations

import importlib
import tomllib
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from tally.errors import Code, TallyError

#: Event types that move units from one party to another (a transfer, a pledge enforced).
MOVES = ("custody.transfer", "custody.enforce")
#: Findings one rule may report for one block; more are cut, and the last says so.
MAX_FINDINGS = 1000
#: Accounts whose velocity window a rule keeps (least recently active forgotten first).
MAX_TRACKED_ACCOUNTS = 100_000
#: Accounts one ``flagged_party`` rule may list.
MAX_FLAGGED = 100_000

Event = dict[str, Any]


class RulesError(TallyError):
    """A rules file that is not valid: the message names the rule and the field."""

    code = Code.INVALID_REQUEST


@dataclass(frozen=True, slots=True)
class Finding:
    """What a rule found in a block: the events that make it (log indexes) and why."""

    events: tuple[int, ...]
    message: str

    def __init__(self, events: Sequence[int], message: str) -> None:
        object.__setattr__(self, "events", tuple(int(i) for i in events))
        object.__setattr__(self, "message", str(message))


@dataclass
class Rule:
    """A rule: its name (unique in the file), its kind, and how it evaluates a block."""

    name: str
    kind: ClassVar[str] = ""

    def evaluate(self, events: list[Event], reader: Any) -> list[Finding]:
        raise NotImplementedError


def _moves(events: list[Event], types: tuple[str, ...] = MOVES) -> list[Event]:
    return [e for e in events if e.get("type") in types and e.get("quantity")]


@dataclass
class LargeTransfer(Rule):
    """A single move of at least ``min_quantity`` units (of ``asset``, or of any asset
    of ``asset_class``, or of any asset)."""

    min_quantity: int = 0
    asset: str | None = None
    asset_class: str | None = None
    kind: ClassVar[str] = "large_transfer"

    def evaluate(self, events: list[Event], reader: Any) -> list[Finding]:
        out = []
        classes: dict[str, str | None] = {}
        for e in _moves(events):
            if self.asset is not None and e.get("asset") != self.asset:
                continue
            if self.asset_class is not None:
                asset = e.get("asset") or ""
                if asset not in classes:
                    record = reader.value(b"asset/" + asset.encode())
                    classes[asset] = record.get("class") if isinstance(record, dict) else None
                if classes[asset] != self.asset_class:
                    continue
            if e["quantity"] >= self.min_quantity:
                out.append(Finding([e["log_index"]], (
                    f"{e['type']} of {e['quantity']} {e.get('asset')} from {e.get('from')} to "
                    f"{e.get('to')} (at least {self.min_quantity})")))
        return out


@dataclass
class Velocity(Rule):
    """More than ``max_transfers`` moves sent by one account within the last
    ``window_blocks`` blocks (this block included). The windows live in memory, bounded
    by :data:`MAX_TRACKED_ACCOUNTS` accounts of ``max_transfers + 1`` entries each; they
    start empty when the node starts."""

    max_transfers: int = 0
    window_blocks: int = 1
    kind: ClassVar[str] = "velocity"
    _seen: OrderedDict[str, deque[int]] = field(default_factory=OrderedDict, repr=False)

    def evaluate(self, events: list[Event], reader: Any) -> list[Finding]:
        by_sender: dict[str, list[Event]] = {}
        for e in _moves(events):
            if e.get("from"):
                by_sender.setdefault(e["from"], []).append(e)
        out = []
        for sender, sent in by_sender.items():
            height = sent[0]["height"]
            window = self._seen.pop(sender, None) or deque(maxlen=self.max_transfers + 1)
            window.extend(height for _ in sent)
            while window and window[0] <= height - self.window_blocks:
                window.popleft()
            self._seen[sender] = window
            if len(self._seen) > MAX_TRACKED_ACCOUNTS:
                self._seen.popitem(last=False)
            if len(window) > self.max_transfers:
                out.append(Finding([e["log_index"] for e in sent], (
                    f"{sender} sent more than {self.max_transfers} transfers in "
                    f"{self.window_blocks} blocks ({len(sent)} in block {height})")))
        return out


@dataclass
class Concentration(Rule):
    """After a move of ``asset``, the receiver holds more than ``max_share_bps``
    (basis points, 1/10000) of the asset's supply."""

    asset: str = ""
    max_share_bps: int = 0
    kind: ClassVar[str] = "concentration"

    def evaluate(self, events: list[Event], reader: Any) -> list[Finding]:
        received: dict[str, list[int]] = {}
        for e in _moves(events, (*MOVES, "asset.issue")):
            if e.get("asset") == self.asset and e.get("to"):
                received.setdefault(e["to"], []).append(e["log_index"])
        if not received:
            return []
        record = reader.value(b"asset/" + self.asset.encode())
        supply = record.get("supply", 0) if isinstance(record, dict) else 0
        if not supply:
            return []
        out = []
        for holder, indexes in received.items():
            held = reader.holding(self.asset, holder)["q"]
            share = held * 10_000 // supply
            if share > self.max_share_bps:
                out.append(Finding(indexes, (
                    f"{holder} holds {held} of {supply} {self.asset} ({share / 100:.2f} %, "
                    f"over {self.max_share_bps / 100:.2f} %)")))
        return out


def _parties(e: Event) -> list[str]:
    return [p for p in (e.get("from"), e.get("to")) if isinstance(p, str) and p]


@dataclass
class FlaggedParty(Rule):
    """Any event to or from one of ``accounts`` (a watch list)."""

    accounts: frozenset[str] = frozenset()
    kind: ClassVar[str] = "flagged_party"

    def evaluate(self, events: list[Event], reader: Any) -> list[Finding]:
        out = []
        for e in events:
            hit = [p for p in _parties(e) if p in self.accounts]
            if hit:
                out.append(Finding([e["log_index"]], (
                    f"{e['type']} involves flagged account {', '.join(sorted(set(hit)))}")))
        return out


@dataclass
class FrozenParty(Rule):
    """A move to or from an account whose status is frozen (or closed), or whose
    member is suspended or expelled (identity chains, protocol version 4)."""

    types: tuple[str, ...] = (*MOVES, "custody.pledge", "custody.release", "asset.redeem",
                              "asset.issue")
    kind: ClassVar[str] = "frozen_party"

    def evaluate(self, events: list[Event], reader: Any) -> list[Finding]:
        out = []
        why: dict[str, str | None] = {}
        for e in _moves(events, self.types):
            reasons = []
            for party in _parties(e):
                if party not in why:
                    why[party] = _inactive(reader, party)
                if why[party]:
                    reasons.append(f"{party} {why[party]}")
            if reasons:
                out.append(Finding([e["log_index"]], f"{e['type']} with " + "; ".join(reasons)))
        return out


def _inactive(reader: Any, address: str) -> str | None:
    account = reader.value(b"account/" + address.encode())
    if not isinstance(account, dict):
        return None
    if account.get("status") not in (None, "active"):
        return f"(account {account['status']})"
    member = reader.value(b"member/" + str(account.get("member", "")).encode())
    if isinstance(member, dict) and member.get("status") not in (None, "active"):
        return f"(member {account.get('member')} {member['status']})"
    return None


@dataclass
class PythonRule(Rule):
    """A rule written as a Python function ``(block_events, reader) -> list[Finding]``,
    imported from ``module`` ("package.module:function"). The operator's own code, run
    with the node's privileges."""

    module: str = ""
    function: Callable[[list[Event], Any], Any] | None = field(default=None, repr=False)
    kind: ClassVar[str] = "python"

    def evaluate(self, events: list[Event], reader: Any) -> list[Finding]:
        assert self.function is not None
        found = self.function(events, reader)
        if not isinstance(found, list) or not all(isinstance(f, Finding) for f in found):
            raise TypeError(f"python rule {self.module} must return a list of Finding")
        return found


# --- parsing -----------------------------------------------------------------------------

#: Each kind: its class, its required fields and its optional ones, with their types.
_INT = (int,)
KINDS: dict[str, tuple[type[Rule], dict[str, tuple[type, ...]], dict[str, tuple[type, ...]]]] = {
    "large_transfer": (LargeTransfer, {"min_quantity": _INT},
                       {"asset": (str,), "asset_class": (str,)}),
    "velocity": (Velocity, {"max_transfers": _INT, "window_blocks": _INT}, {}),
    "concentration": (Concentration, {"asset": (str,), "max_share_bps": _INT}, {}),
    "flagged_party": (FlaggedParty, {"accounts": (list,)}, {}),
    "frozen_party": (FrozenParty, {}, {}),
    "python": (PythonRule, {"module": (str,)}, {}),
}


def load_rules(path: Path | str) -> list[Rule]:
    """The rules of a TOML rules file, or RulesError naming what is wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"cannot read the rules file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise RulesError(f"the rules file {path} is not UTF-8 text") from None
    return parse_rules(text, str(path))


def parse_rules(text: str, source: str = "rules") -> list[Rule]:
    """Rules from TOML text (see the module docstring), checked strictly: unknown kinds,
    unknown or missing fields, wrong types, out-of-range values and duplicate names are
    refused with a RulesError that names the rule and the field."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{source}: not valid TOML: {exc}") from None
    extra = set(doc) - {"rule"}
    if extra:
        raise RulesError(f"{source}: unknown top-level key(s) {sorted(extra)}; a rules file "
                         "holds only [[rule]] tables")
    tables = doc.get("rule", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise RulesError(f"{source}: 'rule' must be an array of tables ([[rule]])")
    rules: list[Rule] = []
    names: set[str] = set()
    for number, table in enumerate(tables, 1):
        rule = _parse_rule(table, f"{source}: rule {number}")
        if rule.name in names:
            raise RulesError(f"{source}: rule {number}: the name {rule.name!r} is used twice")
        names.add(rule.name)
        rules.append(rule)
    return rules


def _parse_rule(table: dict[str, Any], where: str) -> Rule:
    name = table.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 100:
        raise RulesError(f"{where}: 'name' must be a string of 1 to 100 characters")
    where = f"{where} ({name!r})"
    kind = table.get("kind")
    if kind not in KINDS:
        raise RulesError(f"{where}: 'kind' must be one of {', '.join(KINDS)}, not {kind!r}")
    cls, required, optional = KINDS[kind]
    fields = {k: v for k, v in table.items() if k not in ("name", "kind")}
    unknown = set(fields) - set(required) - set(optional)
    if unknown:
        raise RulesError(f"{where}: unknown field(s) {sorted(unknown)} for kind {kind}")
    missing = set(required) - set(fields)
    if missing:
        raise RulesError(f"{where}: missing field(s) {sorted(missing)} for kind {kind}")
    for key, value in fields.items():
        types = required.get(key) or optional[key]
        if not isinstance(value, types) or (types == _INT and isinstance(value, bool)):
            raise RulesError(f"{where}: {key!r} must be {_type_name(types)}, not "
                             f"{type(value).__name__}")
    return _CHECKS[kind](cls, name, fields, where)


def _type_name(types: tuple[type, ...]) -> str:
    return {int: "an integer", str: "a string", list: "a list"}[types[0]]


def _positive(fields: dict[str, Any], key: str, where: str, *, upper: int | None = None
              ) -> int:
    value = fields[key]
    if value < 1 or (upper is not None and value > upper):
        bound = f" and at most {upper}" if upper is not None else ""
        raise RulesError(f"{where}: {key!r} must be at least 1{bound}, not {value}")
    return value


def _large(cls: Any, name: str, f: dict[str, Any], where: str) -> Rule:
    if "asset" in f and "asset_class" in f:
        raise RulesError(f"{where}: give 'asset' or 'asset_class', not both")
    return cls(name, min_quantity=_positive(f, "min_quantity", where), asset=f.get("asset"),
               asset_class=f.get("asset_class"))


def _velocity(cls: Any, name: str, f: dict[str, Any], where: str) -> Rule:
    return cls(name, max_transfers=_positive(f, "max_transfers", where, upper=100_000),
               window_blocks=_positive(f, "window_blocks", where, upper=1_000_000))


def _concentration(cls: Any, name: str, f: dict[str, Any], where: str) -> Rule:
    if not f["asset"]:
        raise RulesError(f"{where}: 'asset' must not be empty")
    return cls(name, asset=f["asset"],
               max_share_bps=_positive(f, "max_share_bps", where, upper=9_999))


def _flagged(cls: Any, name: str, f: dict[str, Any], where: str) -> Rule:
    accounts = f["accounts"]
    if not accounts or len(accounts) > MAX_FLAGGED:
        raise RulesError(f"{where}: 'accounts' must list 1 to {MAX_FLAGGED} addresses")
    for a in accounts:
        if not isinstance(a, str) or len(a) != 40 or any(c not in "0123456789abcdef" for c in a):
            raise RulesError(f"{where}: {a!r} in 'accounts' is not an address (40 lowercase "
                             "hex digits)")
    return cls(name, accounts=frozenset(accounts))


def _frozen(cls: Any, name: str, f: dict[str, Any], where: str) -> Rule:
    return cls(name)


def _python(cls: Any, name: str, f: dict[str, Any], where: str) -> Rule:
    path = f["module"]
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise RulesError(f"{where}: 'module' must read 'package.module:function', not {path!r}")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the operator's module: any import error is theirs to read
        raise RulesError(f"{where}: cannot import {module_name!r}: {exc!r}") from None
    function = getattr(module, attr, None)
    if not callable(function):
        raise RulesError(f"{where}: {module_name!r} has no function {attr!r}")
    return cls(name, module=path, function=function)


_CHECKS: dict[str, Callable[[Any, str, dict[str, Any], str], Rule]] = {
    "large_transfer": _large, "velocity": _velocity, "concentration": _concentration,
    "flagged_party": _flagged, "frozen_party": _frozen, "python": _python,
}
