"""The supervision rules file: malformed files refused with a message that names the rule
and the field; the rules' bounded memory (docs/supervision.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tally.supervision.rules import (
    MAX_TRACKED_ACCOUNTS,
    Concentration,
    FlaggedParty,
    LargeTransfer,
    PythonRule,
    RulesError,
    Velocity,
    load_rules,
    parse_rules,
)

BOB = "b" * 40


def test_every_kind_parses() -> None:
    rules = parse_rules(f"""
[[rule]]
name = "a"
kind = "large_transfer"
min_quantity = 10
asset_class = "security"
[[rule]]
name = "b"
kind = "velocity"
max_transfers = 5
window_blocks = 10
[[rule]]
name = "c"
kind = "concentration"
asset = "BOND"
max_share_bps = 2500
[[rule]]
name = "d"
kind = "flagged_party"
accounts = ["{BOB}"]
[[rule]]
name = "e"
kind = "frozen_party"
[[rule]]
name = "f"
kind = "python"
module = "tests.support.alert_rules:redeems"
""")
    assert [(r.name, r.kind) for r in rules] == [
        ("a", "large_transfer"), ("b", "velocity"), ("c", "concentration"),
        ("d", "flagged_party"), ("e", "frozen_party"), ("f", "python")]
    assert isinstance(rules[0], LargeTransfer) and rules[0].asset_class == "security"
    assert isinstance(rules[1], Velocity) and rules[1].window_blocks == 10
    assert isinstance(rules[2], Concentration) and rules[2].max_share_bps == 2500
    assert isinstance(rules[3], FlaggedParty) and rules[3].accounts == {BOB}
    assert isinstance(rules[5], PythonRule) and callable(rules[5].function)
    assert parse_rules("") == []


@pytest.mark.parametrize(("text", "says"), [
    ("[[rule]\nname = 'x'", "not valid TOML"),
    ("[alerts]\nqueue = 3", "unknown top-level key"),
    ("rule = 3", "array of tables"),
    ("[[rule]]\nkind = 'velocity'", "'name' must be a string"),
    ("[[rule]]\nname = 'x'\nkind = 'sandbox'", "'kind' must be one of"),
    ("[[rule]]\nname = 'x'\nkind = 'velocity'\nmax_transfers = 3", "missing field(s) "
                                                                    "['window_blocks']"),
    ("[[rule]]\nname = 'x'\nkind = 'frozen_party'\nasset = 'B'", "unknown field(s) ['asset']"),
    ("[[rule]]\nname = 'x'\nkind = 'large_transfer'\nmin_quantity = '10'",
     "'min_quantity' must be an integer, not str"),
    ("[[rule]]\nname = 'x'\nkind = 'large_transfer'\nmin_quantity = true",
     "'min_quantity' must be an integer, not bool"),
    ("[[rule]]\nname = 'x'\nkind = 'large_transfer'\nmin_quantity = 0", "at least 1"),
    ("[[rule]]\nname = 'x'\nkind = 'large_transfer'\nmin_quantity = 1\nasset = 'A'\n"
     "asset_class = 'security'", "not both"),
    ("[[rule]]\nname = 'x'\nkind = 'concentration'\nasset = 'A'\nmax_share_bps = 10000",
     "at most 9999"),
    ("[[rule]]\nname = 'x'\nkind = 'flagged_party'\naccounts = []", "1 to"),
    ("[[rule]]\nname = 'x'\nkind = 'flagged_party'\naccounts = ['bob']", "not an address"),
    ("[[rule]]\nname = 'x'\nkind = 'python'\nmodule = 'nocolon'", "package.module:function"),
    ("[[rule]]\nname = 'x'\nkind = 'python'\nmodule = 'no_such_pkg_xyz:f'", "cannot import"),
    ("[[rule]]\nname = 'x'\nkind = 'python'\nmodule = 'tests.support.alert_rules:not_a_function'",
     "has no function"),
    ("[[rule]]\nname = 'x'\nkind = 'frozen_party'\n[[rule]]\nname = 'x'\nkind = 'frozen_party'",
     "used twice"),
])
def test_malformed_files_are_refused_with_a_clear_message(text: str, says: str) -> None:
    with pytest.raises(RulesError) as refused:
        parse_rules(text, "rules.toml")
    assert says in refused.value.message
    assert refused.value.message.startswith("rules.toml")


def test_load_rules_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read the rules file"):
        load_rules(tmp_path / "absent.toml")
    path = tmp_path / "rules.toml"
    path.write_text("[[rule]]\nname = 'x'\nkind = 'nope'\n")
    with pytest.raises(RulesError, match=r"rules.toml: rule 1 \('x'\): 'kind'"):
        load_rules(path)


def _move(sender: str, height: int, index: int) -> dict:
    return {"type": "custody.transfer", "from": sender, "to": BOB, "quantity": 1,
            "asset": "BOND", "height": height, "log_index": index}


def test_velocity_windows_slide_and_stay_bounded() -> None:
    rule = Velocity("v", max_transfers=2, window_blocks=2)
    a = "a" * 40
    assert rule.evaluate([_move(a, 1, 0), _move(a, 1, 1)], None) == []
    assert [f.events for f in rule.evaluate([_move(a, 2, 2)], None)] == [(2,)]
    assert rule.evaluate([_move(a, 4, 3)], None) == []  # the window moved past 1 and 2
    assert len(rule._seen[a]) <= 3
    for i in range(MAX_TRACKED_ACCOUNTS + 10):
        rule.evaluate([_move(f"{i:040x}", 5, i)], None)
    assert len(rule._seen) == MAX_TRACKED_ACCOUNTS
