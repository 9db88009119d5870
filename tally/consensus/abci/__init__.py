"""The generic ABCI 2.0 layer Tally's CometBFT application plugs into.

``abci`` is the generated protobuf module (``abci.RequestFinalizeBlock`` and so on);
`Application` is the base class to subclass; `ABCIServer` serves it to CometBFT.
"""

from tally.consensus.abci.application import (
    ABCI_VERSION,
    CODE_OK,
    Application,
    take_txs_within,
    tx_proto_size,
    vote_extension_sign_bytes,
)
from tally.consensus.abci.client import ABCIClient, ABCIClosed
from tally.consensus.abci.proto_gen.tendermint.abci import types_pb2 as abci
from tally.consensus.abci.server import ABCIServer, ApplicationError, ThreadedServer, serve

__all__ = [
    "ABCI_VERSION",
    "CODE_OK",
    "ABCIClient",
    "ABCIClosed",
    "ABCIServer",
    "Application",
    "ApplicationError",
    "ThreadedServer",
    "abci",
    "serve",
    "take_txs_within",
    "tx_proto_size",
    "vote_extension_sign_bytes",
]
