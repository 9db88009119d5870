"""Custody transfers per second on the embedded node with and without the default alert
rules, side by side in one run, and the time from a block's commit to its alerts stored.

The alerts evaluate on their own thread (decision 0031), so what they cost the chain is
the CPU (and the GIL) they share with it. Issue 16's target, with authentication,
private data and the default alerts all on: at least 85 % of the throughput without;
this measures the alerts' part.

    python bench/bench_alerts.py [--suite intl|gm] [--txs 20000] [--senders 200] [--rounds 3]

The default rules (DEFAULT_RULES below, the example of docs/supervision.md): a large
transfer, velocity per sender, concentration of the bond, a watch list naming one sender
(so alerts fire on every block) and dealings with frozen accounts.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_custody import presign, run_inprocess, setup  # noqa: E402

from tally.supervision.alerts import Alerter  # noqa: E402
from tally.supervision.rules import parse_rules  # noqa: E402

DEFAULT_RULES = """
[[rule]]
name = "large-transfer"
kind = "large_transfer"
min_quantity = 1000000

[[rule]]
name = "velocity"
kind = "velocity"
max_transfers = 50
window_blocks = 10

[[rule]]
name = "bond-concentration"
kind = "concentration"
asset = "BOND"
max_share_bps = 2500

[[rule]]
name = "watch-list"
kind = "flagged_party"
accounts = ["{flagged}"]

[[rule]]
name = "frozen"
kind = "frozen_party"
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def one_run(args: argparse.Namespace, data_dir: Path, alerts: bool) -> dict:
    node, accounts = setup(args.suite, args.senders, data_dir)
    raws = presign(accounts, args.txs)
    alerter = None
    if alerts:
        rules = parse_rules(DEFAULT_RULES.replace("{flagged}", accounts[0].address))
        alerter = Alerter.attach(node, rules)
        assert alerter.wait_for(node.ledger.height, 60)
        alerter.latencies.clear()
    start_height = node.ledger.height
    elapsed = run_inprocess(node, raws)
    out = {"rate": len(raws) / elapsed, "blocks": node.ledger.height - start_height}
    if alerter is not None:
        caught = time.perf_counter()
        assert alerter.wait_for(node.ledger.height, 300), "alerts did not catch up"
        out["catch_up_s"] = time.perf_counter() - caught
        lat = [s for _, s, _ in alerter.latencies]
        with_alerts = [s for _, s, n in alerter.latencies if n]
        out |= {"p50": percentile(lat, 0.5), "p99": percentile(lat, 0.99),
                "alert_p50": percentile(with_alerts, 0.5) if with_alerts else float("nan"),
                "alert_p99": percentile(with_alerts, 0.99) if with_alerts else float("nan"),
                "alerts": len(alerter.alerts.list(limit=1000)),
                "fell_behind": alerter.fell_behind}
        alerter.stop()
    node.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--suite", default="intl", choices=["intl", "gm"])
    ap.add_argument("--txs", type=int, default=20_000)
    ap.add_argument("--senders", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tally-bench-alerts-"))
    best: dict[bool, dict] = {}
    try:
        for round_ in range(args.rounds):
            for alerts in ((False, True) if round_ % 2 == 0 else (True, False)):
                r = one_run(args, tmp / f"{round_}-{alerts}", alerts)
                label = "default alerts" if alerts else "no alerts     "
                extra = (f"; commit->stored p50 {r['p50'] * 1000:.1f} ms p99 "
                         f"{r['p99'] * 1000:.1f} ms (blocks with alerts p50 "
                         f"{r['alert_p50'] * 1000:.1f} ms p99 {r['alert_p99'] * 1000:.1f} ms), "
                         f"caught up {r['catch_up_s'] * 1000:.0f} ms after the last commit, "
                         f"fell behind {r['fell_behind']}x" if alerts else "")
                print(f"round {round_ + 1} suite={args.suite} {label}: {r['rate']:,.0f} tx/s "
                      f"({r['blocks']} blocks){extra}", flush=True)
                if alerts not in best or r["rate"] > best[alerts]["rate"]:
                    best[alerts] = r
        off, on = best[False], best[True]
        print(f"best: without {off['rate']:,.0f} tx/s, with default alerts {on['rate']:,.0f} "
              f"tx/s = {100 * on['rate'] / off['rate']:.1f} % (target >= 85 % with "
              f"authentication and private data too); commit->stored p50 "
              f"{on['p50'] * 1000:.1f} ms, p99 {on['p99'] * 1000:.1f} ms")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
