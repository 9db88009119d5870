"""The custody demo: a bond and a receivable through their lives, then evidence.

It runs against any node through the SDK (the same calls an application makes), prints
what happens in plain words, and ends by exporting the evidence of one transfer and
verifying it offline, as a court would.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from tally.errors import TallyError
from tally.evidence.verify import EvidenceError, verify_bundle
from tally.home import Home
from tally.keys import NamedKey
from tally.sdk import TallyClient


@dataclass
class DemoResult:
    bundle_path: Path
    verified: bool
    tamper_detected: bool
    refused_codes: list[str] = field(default_factory=list)
    final_holdings: dict[str, dict[str, int]] = field(default_factory=dict)


def run_scenario(client: TallyClient, home: Home | dict[str, NamedKey], out_dir: Path,
                 console: Console | None = None) -> DemoResult:
    """The scenario, with the keys of ``home`` (a development home or network directory)
    or the given keys by the scenario's names (the consortium's)."""
    console = console or Console()
    say = console.print
    names = ["issuer", "custodian", "regulator", "alice", "bob", "lender", "supplier", "factor"]
    key = home.__getitem__ if isinstance(home, dict) else home.key
    acct = {name: client.account(key(name)) for name in names}
    addr = {name: a.address for name, a in acct.items()}
    status = client.status()
    say(f"[bold]Chain[/] {status.chain_id} (suite {status.suite}, engine "
        f"{status.engine}), genesis {status.genesis_hash[:16]}…")
    for name in names:
        say(f"  {name:<9} {addr[name]}")
    refused: list[str] = []

    def step(text: str) -> None:
        say(f"\n[bold cyan]▸[/] {text}")

    def done(receipt: object) -> None:
        say(f"  [green]committed[/] in block {receipt.height}, tx {receipt.tx[:16]}…")  # type: ignore[attr-defined]

    def refused_as_expected(action: str, exc: TallyError) -> None:
        refused.append(str(exc.code))
        say(f"  [yellow]refused[/] ({exc.code}): {exc.message}")

    step("The issuer registers a bond: BOND-2030, 1,000,000 units, with its prospectus hash.")
    prospectus = hashlib.sha256(b"BOND-2030 prospectus, 5-year, 3.2% coupon").digest()
    done(acct["issuer"].issue("BOND-2030", asset_class="security", name="5Y Bond 2030 3.2%",
                              quantity=1_000_000, metadata_hash=prospectus))

    step("The issuer registers a receivable owed by a core enterprise to a supplier: "
         "RCV-0001, 500,000 units (one unit = one yuan).")
    done(acct["issuer"].issue("RCV-0001", asset_class="receivable",
                              name="Receivable: core enterprise → supplier, due 2027-06-30",
                              quantity=500_000, to=addr["supplier"]))

    step("Alice buys 10,000 units of the bond: control moves from the issuer to Alice.")
    done(acct["issuer"].transfer("BOND-2030", to=addr["alice"], quantity=10_000))

    step("Alice pledges 4,000 units to the lender as collateral for a loan.")
    pledge = acct["alice"].pledge("BOND-2030", pledgee=addr["lender"], quantity=4_000)
    done(pledge)

    step("On a court order, the custodian freezes 3,000 of Alice's units.")
    freeze = acct["custodian"].freeze("BOND-2030", holder=addr["alice"], quantity=3_000,
                                      reason="Court order (2026) Jing 0491 Min Chu No. 123")
    done(freeze)

    step("Alice tries to sell 5,000 units to Bob: only 3,000 are free (10,000 − 4,000 − 3,000).")
    try:
        acct["alice"].transfer("BOND-2030", to=addr["bob"], quantity=5_000)
        raise RuntimeError("the chain let frozen or pledged units move")
    except TallyError as exc:
        refused_as_expected("transfer", exc)

    step("Bob tries to move Alice's units without her authority.")
    try:
        acct["bob"].transfer("BOND-2030", to=addr["bob"], quantity=100, holder=addr["alice"])
        raise RuntimeError("the chain let a stranger move units")
    except TallyError as exc:
        refused_as_expected("transfer", exc)

    step("Alice sells 2,500 free units to Bob.")
    sale = acct["alice"].transfer("BOND-2030", to=addr["bob"], quantity=2_500,
                                  memo="trade 2026-11-22 #8841")
    done(sale)

    step("The court lifts its order; the custodian releases the freeze.")
    done(acct["custodian"].unfreeze(freeze.tx, reason="order lifted"))

    step("Alice repays the loan; the lender releases the pledge.")
    done(acct["lender"].release(pledge.tx))

    step("The supplier factors its receivable: it transfers RCV-0001 to the factor.")
    done(acct["supplier"].transfer("RCV-0001", to=addr["factor"], quantity=500_000))

    step("At maturity the core enterprise pays; the factor redeems the receivable, "
         "which retires it.")
    done(acct["factor"].redeem("RCV-0001", quantity=500_000))

    step("Bob redeems 500 bond units at the issuer.")
    done(acct["bob"].redeem("BOND-2030", quantity=500))

    step("The regulator attests the hash of its inspection report on the bond.")
    report = hashlib.sha256(b"Inspection report 2026-Q4 BOND-2030").digest()
    done(acct["regulator"].attest(report, title="2026-Q4 inspection report", asset="BOND-2030"))

    step("Alice's holding, read from the node and verified against the validators' "
         "signed checkpoint (no trust in the node needed):")
    holding = client.verified_holding("BOND-2030", addr["alice"])
    say(f"  held {holding.held:,}, pledged {holding.pledged:,}, frozen {holding.frozen:,}, "
        f"free {holding.free:,} — proven at height {holding.height}, signed by "
        f"{', '.join(holding.signers)}")

    step("Custody history of BOND-2030:")
    for ev in client.history("BOND-2030"):
        who = " → ".join(x[:8] + "…" for x in (ev.sender, ev.to) if x)
        say(f"  #{ev.log_index:<3} h{ev.height:<4} {ev.type:<18} {ev.quantity:>9,}  {who}")

    step("Evidence: export the bundle of Alice's sale to Bob, with a consistency proof to "
         "the latest checkpoint.")
    bundle = client.evidence(sale.events[0], consistency=True).to_dict()
    out_dir.mkdir(parents=True, exist_ok=True)
    bundle_path = out_dir / "evidence-alice-to-bob.json"
    bundle_path.write_text(json.dumps(bundle, indent=2))
    say(f"  written to {bundle_path} ({bundle_path.stat().st_size:,} bytes)")

    step("Verify it offline (no node, no database), pinning the genesis hash:")
    verdict = verify_bundle(bundle, genesis_hash=status.genesis_hash)
    for fact in verdict.facts:
        say(f"  [green]✓[/] {fact}")
    say(f"  The same check from a shell: tally evidence verify {bundle_path} "
        f"--genesis-hash {status.genesis_hash}")

    step("Tamper with the bundle (change the quantity in the leaf) and verify again:")
    tampered = _tamper(bundle)
    try:
        verify_bundle(tampered, genesis_hash=status.genesis_hash)
        tamper_detected = False
        say("  [red]the tampered bundle verified: this is a bug[/]")
    except EvidenceError as exc:
        tamper_detected = True
        say(f"  [green]✓ rejected[/]: {exc.message} ({exc.reason})")

    final = {
        name: client.verified_holding("BOND-2030", addr[name]).__dict__
        for name in ("issuer", "alice", "bob")
    }
    return DemoResult(bundle_path, True, tamper_detected, refused, final)


def _tamper(bundle: dict) -> dict:
    import base64

    import cbor2

    leaf = cbor2.loads(base64.b64decode(bundle["event"]["leaf"]))
    leaf["quantity"] += 1
    forged = dict(bundle)
    forged["event"] = dict(bundle["event"], leaf=base64.b64encode(
        cbor2.dumps(leaf, canonical=True)).decode())
    return forged
