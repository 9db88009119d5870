"""A receipt: the outcome of one committed transaction, as every client sees it.

The node builds it from its stored transaction row, the API serves it as JSON, and the
SDK reads it back: one type, so a field means the same thing at every edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tally.errors import Code, TallyError, error_for


@dataclass(frozen=True, slots=True)
class Receipt:
    #: The transaction id (hex).
    tx: str
    height: int
    #: The transaction's place in its block.
    position: int
    #: ``OK`` or the :class:`~tally.errors.Code` it failed with (its writes discarded).
    code: str
    message: str
    #: Indexes of the custody-log events it caused.
    events: list[int] = field(default_factory=list)
    #: What it returned (a contract call's return value), as JSON-able data.
    result: Any = None

    @property
    def ok(self) -> bool:
        return self.code == Code.OK

    def error(self) -> TallyError | None:
        """The typed error of a failed transaction; None for a successful one."""
        return None if self.ok else error_for(self.code, self.message)

    def raise_for_code(self) -> Receipt:
        """Self if the transaction succeeded; else raise its typed error."""
        error = self.error()
        if error is not None:
            raise error
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"tx": self.tx, "height": self.height, "position": self.position,
                "code": self.code, "message": self.message, "events": list(self.events),
                "result": self.result}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Receipt:
        return cls(doc["tx"], doc["height"], doc["position"], doc["code"], doc["message"],
                   list(doc.get("events", [])), doc.get("result"))
