"""A block's contract code shares one step budget (tally.exec.context.BlockSteps,
decision 0022): whatever the calls in a block ask for, the block runs at most
`rules.BLOCK_STEPS` steps of contract code, later calls fail `BLOCK_STEPS_SPENT`, and
the outcome depends only on the block's transactions."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from tally import tx as txmod
from tally.errors import Code
from tally.exec.rules import BLOCK_STEPS
from tally.ledger import open_ledger
from tests.integration.test_contracts import TOKEN, deploy
from tests.support.chain import GENESIS_TIME, Chain

ASKED = 900_000  # per call: eight fit the block budget, the ninth runs out part-way


def _block_of_calls(chain: Chain) -> list[bytes]:
    calls = BLOCK_STEPS // ASKED + 2  # enough to spend the block and two more
    raws = [chain.sign("alice", "contract.call",
                       {"contract": "token", "method": "spin", "steps": ASKED})
            for _ in range(calls)]
    # A custody transaction after them still runs: only contract code is budgeted.
    raws.append(chain.sign("issuer", "asset.issue", {
        "asset": "BOND", "class": "security", "name": "bond", "quantity": 10}))
    return raws


def _execute(data_dir: Path, chain: Chain, raws: list[bytes]) -> tuple[list[str], bytes, float]:
    ledger = open_ledger(data_dir, chain.genesis)
    txs = [txmod.decode(raw, max_size=1 << 20) for raw in raws]
    started = time.process_time()
    pending = ledger.execute(txs, GENESIS_TIME + 10**9)  # after every block so far
    cpu = time.process_time() - started
    ledger.commit(pending)
    return [o.code for o in pending.outcomes], pending.header.state, cpu


def test_a_block_runs_at_most_its_step_budget_of_contract_code(intl_chain: Chain,
                                                               tmp_path: Path) -> None:
    chain = intl_chain
    assert deploy(chain, "token", TOKEN, [1000]).code == "OK"
    raws = _block_of_calls(chain)
    chain.node.stop()
    copy = tmp_path / "copy"
    shutil.copytree(chain.data_dir, copy)

    codes, state, cpu = _execute(chain.data_dir, chain, raws)
    full = BLOCK_STEPS // ASKED
    assert codes[:full] == [Code.VM_OUT_OF_STEPS] * full  # each spent its own 900,000
    # The next ran out of the block's budget part-way, and the last was not run at all:
    # both say so, distinct from a call that ran out of its own budget.
    assert codes[full:-1] == [Code.BLOCK_STEPS_SPENT] * 2
    assert codes[-1] == Code.OK
    # 6,000,000 steps of a plain loop are about 0.3 s here (bench/bench_block_steps.py
    # times the meter's worst case); the codes above are what shows the bound.
    assert cpu < 10, cpu

    # The same block on a copy of the ledger reaches the same codes and state root.
    again, state_again, _ = _execute(copy, chain, raws)
    assert (again, state_again) == (codes, state)
