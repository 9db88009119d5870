"""A small harness that plays the executor's part: it owns a dict-backed store,
applies write sets after successful calls and keeps the events. For tests, the
benchmark, and anyone trying a contract by hand."""

from __future__ import annotations

from typing import Any

from .machine import VM, Context, Event, ExecutionResult, Host
from .storage import DictStorage


class Harness:
    def __init__(self, vm: VM | None = None, host: Host | None = None) -> None:
        self.vm = vm or VM()
        self.storage = DictStorage()
        self.host = host
        self.events: list[Event] = []
        self.height = 1
        self.time_ms = 1_700_000_000_000
        self.tx_counter = 0

    def ctx(self, caller: str) -> Context:
        self.tx_counter += 1
        return Context(
            caller=caller,
            height=self.height,
            time_ms=self.time_ms,
            tx_id=self.tx_counter.to_bytes(32, "big"),
        )

    def _commit(self, result: ExecutionResult) -> ExecutionResult:
        self.storage.apply(result.write_set)
        self.events.extend(result.events)
        return result

    def deploy(
        self, name: str, source: str, *args: Any, caller: str = "alice", steps: int | None = None
    ) -> ExecutionResult:
        return self._commit(
            self.vm.deploy(
                name,
                source,
                list(args),
                storage=self.storage,
                ctx=self.ctx(caller),
                host=self.host,
                steps=steps,
            )
        )

    def call(
        self,
        contract: str,
        method: str,
        *args: Any,
        caller: str = "alice",
        steps: int | None = None,
    ) -> Any:
        result = self.vm.call(
            contract,
            method,
            list(args),
            storage=self.storage,
            ctx=self.ctx(caller),
            host=self.host,
            steps=steps,
        )
        return self._commit(result).return_value

    def result(
        self,
        contract: str,
        method: str,
        *args: Any,
        caller: str = "alice",
        steps: int | None = None,
    ) -> ExecutionResult:
        """Like :meth:`call` but returns the whole result."""
        return self._commit(
            self.vm.call(
                contract,
                method,
                list(args),
                storage=self.storage,
                ctx=self.ctx(caller),
                host=self.host,
                steps=steps,
            )
        )

    def query(self, contract: str, method: str, *args: Any, caller: str = "alice") -> Any:
        return self.vm.query(
            contract, method, list(args), storage=self.storage, ctx=self.ctx(caller), host=self.host
        ).return_value
