"""Tier 2: Python contracts, run by :mod:`tally.vm`, inside the same blocks as custody.

* **Lifecycle.** A contract is deployed or upgraded only by the committee: the governance
  actions ``contract.deploy`` and ``contract.upgrade`` (tally.exec.governance). Every
  version's source is kept on chain (``contract_src/<name>/<version>``) so an auditor
  reads the code that ran at any height; the version record names its code hash.
* **Calls.** ``contract.call`` runs a method with the sender as caller and a step budget;
  any failure reverts every write of the call, nested calls included, and the receipt
  carries the VM's typed error code and the contract's message.
* **Custody through one door.** Contracts move custody assets only through the host
  functions below, which apply the custody rules and emit *custody* events, so tier-1
  evidence covers transfers made by contracts. A contract has a custody account whose
  address is derived from its name. An asset a contract issues is *controlled* by it:
  holders cannot move it with plain custody transactions, only through the contract.
* **Events.** What contracts ``emit`` goes to the commercial (tier-2) log, whose size
  and root every tier-1 checkpoint names: tier-2 evidence chains to the same cosigned
  checkpoints.

State: ``contract/<name>`` {address, version, code_id, versions: [...]}, the VM's own keys
under ``c/<name>/``, and ``contract_src/<name>/<version>``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from tally import codec
from tally.errors import Code, ExecutionFailed, as_code
from tally.exec import payload as p
from tally.exec import sandbox
from tally.exec.context import ContractEvent, Event, TxContext
from tally.exec.custody import CUSTODY_SOURCE, contract_address
from tally.exec.module import Action, HostFunction, HostState, Module
from tally.exec.operation import Operation
from tally.exec.state import Raw
from tally.vm import (
    DEFAULT_LIMITS,
    Context,
    ExecutionResult,
    Host,
    HostError,
    HostRequest,
    VMError,
)
from tally.vm import encode_value as vm_encode
from tally.vm.compiler import is_valid_contract_name
from tally.vm.storage import code_id_key, source_key

#: Contract names never look like account addresses, so a contract can tell whether it
#: was called by an account or by another contract.
_LOOKS_LIKE_ADDRESS = re.compile(r"^[0-9a-f]{40}$")


def contract_key(name: str) -> bytes:
    return f"contract/{name}".encode()


def contract_source_key(name: str, version: int) -> bytes:
    return f"contract_src/{name}/{version}".encode()


def vm_error_to_tally(exc: VMError) -> ExecutionFailed:
    """The VM's typed error as the executor reports it: its code is already one of
    :class:`~tally.errors.Code` (a host function may pass on any module's code)."""
    return ExecutionFailed(exc.message, as_code(exc.code))


class StateStorage:
    """The VM's storage backend over a block's state: canonical bytes in, bytes out."""

    __slots__ = ("state",)

    def __init__(self, state: Any) -> None:
        self.state = state

    def get(self, key: bytes) -> bytes | None:
        value = self.state.get(key)
        if value is None:
            return None
        if type(value) is Raw:
            return value.data
        return codec.encode_trusted(value)


def apply_result(ctx: TxContext, write_set: dict[bytes, bytes | None], events: list) -> None:
    """Write a successful execution into the block and sort its events by log."""
    for key, value in write_set.items():
        if value is None:
            ctx.state.delete(key)
        elif key.startswith(b"c/"):
            ctx.state.put(key, Raw(value))
        else:  # custody state written by host functions: kept decoded, like all of it
            ctx.state.put(key, codec.decode(value))
    for ev in events:
        if ev.contract == CUSTODY_SOURCE:
            d = ev.data
            ctx.emit(Event(ev.name, d["asset"], d.get("from"), d.get("to"), d["quantity"],
                           details=d.get("details", {})))
        else:
            ctx.contract_events.append(
                ContractEvent(ev.contract, str(ev.name), codec.encode_trusted(ev.data)))


def _vm_context(ctx: TxContext, caller: str) -> Context:
    return Context(caller=caller, height=ctx.height, time_ms=ctx.time_ms, tx_id=ctx.tx_id,
                   origin=caller)


# --- the host: dispatching contracts' host calls to the modules that own them ---------

def make_host(functions: Iterable[HostFunction]) -> Host:
    """The VM's host hook over a chain's host functions (each module contributes its own:
    tally.exec.rules composes them)."""
    table = {f.name: f for f in functions}

    def host(req: HostRequest) -> Any:
        fn = table.get(req.function)
        if fn is None:
            raise HostError(f"no host function {req.function!r}", code=Code.VM_NO_HOST.value)
        req.charge(fn.cost)  # a host call costs like several contract steps
        try:
            return fn.call(req, HostState(req), *req.args)
        except ExecutionFailed as exc:
            raise HostError(exc.message, code=str(exc.code)) from None
        except TypeError as exc:
            raise HostError(f"{req.function}: {exc}", code=str(Code.INVALID_PAYLOAD)) from None

    return host


# --- transactions and governance actions ------------------------------------------------

def _args_list(name: str, value: Any) -> list:
    if not isinstance(value, list):
        raise p.invalid(f"{name} must be a list")
    return value


def _steps(name: str, value: Any) -> int:
    limit = DEFAULT_LIMITS.max_steps
    if type(value) is not int or not 0 < value <= limit:
        raise p.invalid(f"{name} must be a whole number from 1 to {limit}")
    return value


def _contract_name(name: str, value: Any) -> str:
    if not is_valid_contract_name(value) or _LOOKS_LIKE_ADDRESS.match(value):
        raise p.invalid(f"{name} must be a contract name (letters, digits, '_', '-'), "
                        "not an account address")
    return value


def _parse_call(payload: dict[str, Any]) -> dict[str, Any]:
    return p.parse(payload, {"contract": _contract_name, "method": p.text(64)},
                   {"args": _args_list, "steps": _steps})


def _metered(ctx: TxContext, wanted: int | None, run: Callable[[int], ExecutionResult]
             ) -> ExecutionResult:
    """Run contract code under the smaller of its own step budget and what the block has
    left, and charge the block what it used (tally.exec.context.BlockSteps)."""
    wanted = wanted or ctx.vm.limits.max_steps
    granted = ctx.block_steps.grant(wanted)
    try:
        result = run(granted)
    except VMError as exc:
        ctx.block_steps.spend(granted if exc.steps_used is None else exc.steps_used)
        if exc.code == Code.VM_OUT_OF_STEPS and granted < wanted:
            raise ExecutionFailed(
                f"this block's steps for contract code ran out during the call "
                f"({granted:,} of the {wanted:,} it asked for were left); submit it again",
                Code.BLOCK_STEPS_SPENT) from None
        raise vm_error_to_tally(exc) from None
    ctx.block_steps.spend(result.steps_used)
    return result


def _call(ctx: TxContext, args: dict[str, Any]) -> None:
    if ctx.state.get(contract_key(args["contract"])) is None:
        raise ExecutionFailed(f"no contract {args['contract']!r}", Code.VM_NO_CONTRACT)
    # Version 4's sandbox (tally.exec.sandbox): none exists on an earlier chain.
    trial = sandbox.before_call(ctx, args["contract"])
    first_event = len(ctx.events)
    result = _metered(ctx, args.get("steps"), lambda steps: ctx.vm.call(
        args["contract"], args["method"], args.get("args", []), storage=StateStorage(ctx.state),
        ctx=_vm_context(ctx, ctx.sender), host=ctx.rules.host, steps=steps))
    apply_result(ctx, result.write_set, result.events)
    if trial is not None:
        sandbox.after_call(ctx, args["contract"], trial, first_event)
    ctx.result = result.return_value


def _parse_source(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise p.invalid(f"{name} must be the contract's Python source")
    return value


def _parse_deploy(args: dict[str, Any]) -> dict[str, Any]:
    return p.parse(args, {"name": _contract_name, "source": _parse_source},
                   {"args": _args_list})


def _parse_upgrade(args: dict[str, Any]) -> dict[str, Any]:
    return p.parse(args, {"name": _contract_name, "source": _parse_source})


def _compiles(ctx: TxContext, source: str) -> str:
    try:
        compiled = ctx.vm.compile(source)
    except VMError as exc:
        raise vm_error_to_tally(exc) from None
    if compiled.imports and ctx.rules.version < 2:
        raise ExecutionFailed("the contract standard library (`from std...`) comes with "
                              f"protocol version 2; this chain is at {ctx.rules.version}",
                              Code.CONTRACT_REJECTED)
    return compiled.code_id.hex()


def _check_deploy(ctx: TxContext, args: dict[str, Any]) -> None:
    if ctx.state.get(contract_key(args["name"])) is not None:
        raise ExecutionFailed(f"contract {args['name']!r} already exists", Code.ALREADY_EXISTS)
    _compiles(ctx, args["source"])


def _check_upgrade(ctx: TxContext, args: dict[str, Any]) -> None:
    if ctx.state.get(contract_key(args["name"])) is None:
        raise ExecutionFailed(f"no contract {args['name']!r}", Code.VM_NO_CONTRACT)
    _compiles(ctx, args["source"])


def _record_version(ctx: TxContext, name: str, source: str, proposal_id: str,
                    previous: dict[str, Any] | None) -> dict[str, Any]:
    code_id = _compiles(ctx, source)
    version = 1 if previous is None else previous["version"] + 1
    entry = {"version": version, "code_id": code_id, "height": ctx.height,
             "proposal": proposal_id}
    record = {"address": contract_address(name), "version": version, "code_id": code_id,
              "versions": [*(previous or {}).get("versions", []), entry]}
    ctx.state.put(contract_key(name), record)
    ctx.state.put(contract_source_key(name, version), source)
    kind = "contract.deploy" if previous is None else "contract.upgrade"
    ctx.emit(Event(kind, sender=ctx.sender, to=record["address"], quantity=version,
                   data=bytes.fromhex(code_id), details={"contract": name, "version": version,
                                                         "proposal": proposal_id}))
    return record


def _apply_deploy(ctx: TxContext, args: dict[str, Any], proposal: dict[str, Any],
                  proposal_id: str) -> None:
    proposer = proposal["proposer"]
    result = _metered(ctx, None, lambda steps: ctx.vm.deploy(
        args["name"], args["source"], args.get("args", []), storage=StateStorage(ctx.state),
        ctx=_vm_context(ctx, proposer), host=ctx.rules.host, steps=steps))
    apply_result(ctx, result.write_set, result.events)
    _record_version(ctx, args["name"], args["source"], proposal_id, None)


def _apply_upgrade(ctx: TxContext, args: dict[str, Any], proposal: dict[str, Any],
                   proposal_id: str) -> None:
    """New code, same storage: the VM loads a contract's code from these two keys."""
    name, source = args["name"], args["source"]
    code_id = bytes.fromhex(_compiles(ctx, source))
    ctx.state.put(code_id_key(name), Raw(vm_encode(code_id)))
    ctx.state.put(source_key(name), Raw(vm_encode(source)))
    # The standard-library modules the new code imports, if no deploy wrote them yet.
    for key, raw in ctx.vm.library_writes(source, StateStorage(ctx.state)).items():
        ctx.state.put(key, Raw(raw))
    _record_version(ctx, name, source, proposal_id, ctx.state.get(contract_key(name)))


MODULE = Module(
    "contracts",
    operations=(Operation("contract.call", _parse_call, _call, "call a contract method"),),
    actions=(
        Action("contract.deploy", _parse_deploy, _check_deploy, _apply_deploy,
               "deploy a new contract (its source kept on chain)"),
        Action("contract.upgrade", _parse_upgrade, _check_upgrade, _apply_upgrade,
               "new code for a contract, same storage"),
    ),
)
