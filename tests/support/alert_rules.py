"""Python alert rules for the supervision tests (``kind = "python"`` in a rules file)."""

from __future__ import annotations

import time
from typing import Any

from tally.supervision import Finding

#: Seconds :func:`slow` sleeps per block.
SLOW_S = 0.2


def redeems(block_events: list[dict[str, Any]], reader: Any) -> list[Finding]:
    """Every redemption, with the issuer's remaining supply read from the reader."""
    out = []
    for e in block_events:
        if e["type"] == "asset.redeem":
            supply = reader.value(f"asset/{e['asset']}".encode())["supply"]
            out.append(Finding([e["log_index"]], f"redeemed {e['quantity']} {e['asset']}, "
                                                 f"supply now {supply}"))
    return out


def slow(block_events: list[dict[str, Any]], reader: Any) -> list[Finding]:
    """A deliberately slow rule: sleeps, then reports every block's first event."""
    time.sleep(SLOW_S)
    return [Finding([block_events[0]["log_index"]], "slow rule saw the block")]


def broken(block_events: list[dict[str, Any]], reader: Any) -> list[Finding]:
    raise ValueError("this rule is broken")


not_a_function = 42
