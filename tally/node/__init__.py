"""A Tally node, as three parts and their wiring.

* :mod:`tally.node.engine` — the :class:`~tally.node.engine.Engine` protocol (what a node
  needs from whatever orders its transactions) and its two implementations, the embedded
  solo engine and CometBFT;
* :mod:`tally.node.reader` — the :class:`~tally.node.reader.ChainReader`: blocks,
  transactions, receipts, events, checkpoints with cosignatures, log views and proofs,
  state proofs, validator sets, contracts; everything clients read, from committed
  blocks only;
* :mod:`tally.node.node` — :class:`~tally.node.node.Node`: a store, a ledger, an engine,
  a reader and the metrics, wired together.

The API, the evidence exporter, the metrics and the CLI read through the reader; none of
them reaches into the store (``tests/unit/test_layering.py`` keeps the layers).
"""

from tally.node.engine import CometSettings, Engine
from tally.node.node import Node
from tally.node.reader import ChainReader, event_to_dict, jsonable, receipt_of_row

__all__ = ["ChainReader", "CometSettings", "Engine", "Node", "event_to_dict", "jsonable",
           "receipt_of_row"]
