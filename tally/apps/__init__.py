"""Contract templates for Tally's tier-2 VM: sources to deploy, not Python to import.

Each template is one contract module in ``tally/apps/contracts/<name>.py``, written in
the contract language (docs/contracts.md) and run by :mod:`tally.vm`; CPython never
imports them. :func:`source` returns a template's text, exactly as deployed. The
templates import the contract standard library (``from std.token import ...``,
tally/vm/stdlib), so the code id on chain is the SHA-256 of this text and of the
library modules it imports (:func:`tally.vm.compiler.linked_code_id`). See docs/apps.md.

    digital_cash     a central bank's digital cash with tiered wallets (e-CNY style)
    security_token   a permissioned security with identities and compliance (ERC-3643 style)
    dvp              delivery versus payment between a security token and digital cash
"""

from __future__ import annotations

from importlib import resources

TEMPLATES = ("digital_cash", "security_token", "dvp")


def source(name: str) -> str:
    """The source text of template ``name`` (one of :data:`TEMPLATES`)."""
    if name not in TEMPLATES:
        raise KeyError(f"no contract template {name!r}; templates: {', '.join(TEMPLATES)}")
    path = resources.files(__name__).joinpath("contracts", f"{name}.py")
    return path.read_text(encoding="utf-8")


def sources() -> dict[str, str]:
    """Every template's source, by name."""
    return {name: source(name) for name in TEMPLATES}
