"""The protocol: what every node of a chain must agree on, byte for byte and rule by rule.

* :mod:`tally.protocol.header` — the typed block header, with its protocol version;
* :mod:`tally.protocol.versions` — which execution rules each protocol version runs, and
  the height at which a chain moves from one version to the next;
* :mod:`tally.protocol.receipt` — what a committed transaction's outcome looks like to a
  client (the one ``Receipt`` type of the node, the API and the SDK);
* :mod:`tally.protocol.http` — the JSON shapes of the HTTP API, which the server answers
  with and the SDK parses (pydantic models, no FastAPI).

The other formats of the protocol keep their own modules: the transaction
(:mod:`tally.tx`), canonical CBOR (:mod:`tally.codec`), the genesis document
(:mod:`tally.genesis`) and the error codes (:mod:`tally.errors`).
"""
