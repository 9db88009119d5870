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

import hashlib
import re
from typing import Any

from tally import codec
from tally.errors import Code, ExecutionFailed
from tally.exec import governance
from tally.exec import payload as p
from tally.exec.context import ContractEvent, Event, TxContext
from tally.exec.custody import (
    ASSET_CLASSES,
    active_asset,
    add_units,
    agent_key,
    asset_key,
    get_holding,
    put_holding,
    take_free_units,
)
from tally.exec.operation import Operation
from tally.exec.roles import roles_of
from tally.exec.state import BlockState, Raw
from tally.vm import VM, Context, HostError, HostRequest, VMError
from tally.vm import encode_value as vm_encode
from tally.vm.compiler import is_valid_contract_name
from tally.vm.storage import code_id_key, source_key

#: One VM per process for block execution (it runs one call at a time and caches
#: compiled code); queries use their own VM so they never wait on a block.
BLOCK_VM = VM()
#: Contract names never look like account addresses, so a contract can tell whether it
#: was called by an account or by another contract.
_LOOKS_LIKE_ADDRESS = re.compile(r"^[0-9a-f]{40}$")
CUSTODY_SOURCE = "custody"


def contract_key(name: str) -> bytes:
    return f"contract/{name}".encode()


def contract_source_key(name: str, version: int) -> bytes:
    return f"contract_src/{name}/{version}".encode()


def contract_address(name: str) -> str:
    """A contract's custody account: derived, so no key can ever sign for it."""
    return hashlib.sha256(b"tally/contract/" + name.encode()).digest()[:20].hex()


def vm_error_to_tally(exc: VMError) -> ExecutionFailed:
    code = Code(exc.code) if exc.code in Code._value2member_map_ else Code.CONTRACT_ERROR
    return ExecutionFailed(str(exc.message if hasattr(exc, "message") else exc), code)


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


# --- the custody host functions ----------------------------------------------------------

class _HostState:
    """custody.* code reads and writes decoded values; the VM's overlay holds bytes."""

    __slots__ = ("req",)

    def __init__(self, req: HostRequest) -> None:
        self.req = req

    def get(self, key: bytes) -> Any:
        raw = self.req.get(key)
        return None if raw is None else codec.decode(raw)

    def put(self, key: bytes, value: Any) -> None:
        self.req.put(key, codec.encode_trusted(value))

    def delete(self, key: bytes) -> None:
        self.req.delete(key)


def _host_fail(exc: ExecutionFailed) -> HostError:
    return HostError(exc.message, code=str(exc.code))


def _arg(check: Any, name: str, value: Any) -> Any:
    try:
        return check(name, value)
    except ExecutionFailed as exc:
        raise _host_fail(exc) from None


def _emit_custody(req: HostRequest, kind: str, asset: str, sender: str | None, to: str | None,
                  quantity: int, details: dict[str, Any]) -> None:
    req.emit(kind, {"asset": asset, "from": sender, "to": to, "quantity": quantity,
                    "details": details | {"contract": req.contract}}, source=CUSTODY_SOURCE)


def _controlled(state: _HostState, req: HostRequest, asset: str) -> dict[str, Any]:
    record = active_asset(state, asset)  # type: ignore[arg-type]
    if record.get("controller") != contract_address(req.contract):
        raise ExecutionFailed(f"contract {req.contract} does not control asset {asset}",
                              Code.UNAUTHORISED)
    return record


def _h_address(req: HostRequest, state: _HostState) -> str:
    return contract_address(req.contract)


def _h_address_of(req: HostRequest, state: _HostState, name: str) -> str:
    if not is_valid_contract_name(name):
        raise HostError(f"invalid contract name {name!r}", code=str(Code.INVALID_PAYLOAD))
    return contract_address(name)


def _h_holding(req: HostRequest, state: _HostState, asset: str, holder: str) -> dict[str, int]:
    _arg(p.identifier, "asset", asset)
    _arg(p.address, "holder", holder)
    return dict(get_holding(state, asset, holder))  # type: ignore[arg-type]


def _h_issue(req: HostRequest, state: _HostState, asset: str, asset_class: str, name: str,
             quantity: int, to: str) -> None:
    _arg(p.identifier, "asset", asset)
    _arg(p.one_of(*ASSET_CLASSES), "asset_class", asset_class)
    _arg(p.text(200), "name", name)
    _arg(p.quantity, "quantity", quantity)
    _arg(p.address, "to", to)
    me = contract_address(req.contract)
    if "issuer" not in roles_of(state, me):  # type: ignore[arg-type]
        raise ExecutionFailed(f"contract {req.contract} ({me}) needs the issuer role",
                              Code.UNAUTHORISED)
    if state.get(asset_key(asset)) is not None:
        raise ExecutionFailed(f"asset {asset!r} already exists", Code.ALREADY_EXISTS)
    state.put(asset_key(asset), {"class": asset_class, "name": name, "issuer": me,
                                 "supply": quantity, "metadata": None, "status": "active",
                                 "issued_at": req.context.height, "controller": me})
    add_units(state, asset, to, quantity)  # type: ignore[arg-type]
    _emit_custody(req, "asset.issue", asset, me, to, quantity,
                  {"class": asset_class, "name": name})


def _h_mint(req: HostRequest, state: _HostState, asset: str, to: str, quantity: int) -> None:
    _arg(p.quantity, "quantity", quantity)
    _arg(p.address, "to", to)
    record = _controlled(state, req, asset)
    state.put(asset_key(asset), {**record, "supply": record["supply"] + quantity})
    add_units(state, asset, to, quantity)  # type: ignore[arg-type]
    _emit_custody(req, "asset.mint", asset, record["controller"], to, quantity, {})


def _h_burn(req: HostRequest, state: _HostState, asset: str, holder: str, quantity: int) -> None:
    _arg(p.quantity, "quantity", quantity)
    _arg(p.address, "holder", holder)
    record = _controlled(state, req, asset)
    holding = take_free_units(state, asset, holder, quantity)  # type: ignore[arg-type]
    put_holding(state, asset, holder, {**holding, "q": holding["q"] - quantity})  # type: ignore[arg-type]
    supply = record["supply"] - quantity
    # A controlled asset stays active at zero supply: its contract may issue it again.
    state.put(asset_key(asset), {**record, "supply": supply})
    _emit_custody(req, "asset.burn", asset, holder, None, quantity, {"supply": supply})


def _move(req: HostRequest, state: _HostState, asset: str, holder: str, to: str,
          quantity: int) -> None:
    _arg(p.quantity, "quantity", quantity)
    _arg(p.address, "to", to)
    active_asset(state, asset)  # type: ignore[arg-type]
    if to == holder:
        raise ExecutionFailed("a transfer needs a recipient other than the holder",
                              Code.INVALID_PAYLOAD)
    holding = take_free_units(state, asset, holder, quantity)  # type: ignore[arg-type]
    put_holding(state, asset, holder, {**holding, "q": holding["q"] - quantity})  # type: ignore[arg-type]
    add_units(state, asset, to, quantity)  # type: ignore[arg-type]
    _emit_custody(req, "custody.transfer", asset, holder, to, quantity,
                  {"by": contract_address(req.contract)})


def _h_transfer(req: HostRequest, state: _HostState, asset: str, to: str, quantity: int) -> None:
    _arg(p.identifier, "asset", asset)
    me = contract_address(req.contract)
    controller = active_asset(state, asset).get("controller")  # type: ignore[arg-type]
    if controller and controller != me:
        raise ExecutionFailed(f"units of {asset} move only through the contract that "
                              f"controls it ({controller})", Code.UNAUTHORISED)
    _move(req, state, asset, me, to, quantity)


def _h_transfer_from(req: HostRequest, state: _HostState, asset: str, holder: str, to: str,
                     quantity: int) -> None:
    _arg(p.identifier, "asset", asset)
    _arg(p.address, "holder", holder)
    me = contract_address(req.contract)
    controller = active_asset(state, asset).get("controller")  # type: ignore[arg-type]
    allowed = controller == me if controller else state.get(agent_key(holder, me)) is not None
    if not allowed:
        raise ExecutionFailed(f"contract {req.contract} may not move {holder}'s units of "
                              f"{asset}: " + ("only its controlling contract may" if controller
                                              else "it is not an agent the holder appointed"),
                              Code.UNAUTHORISED)
    _move(req, state, asset, holder, to, quantity)


HOST_FUNCTIONS: dict[str, Any] = {
    "custody.address": _h_address,
    "custody.address_of": _h_address_of,
    "custody.holding": _h_holding,
    "custody.issue": _h_issue,
    "custody.mint": _h_mint,
    "custody.burn": _h_burn,
    "custody.transfer": _h_transfer,
    "custody.transfer_from": _h_transfer_from,
}
READ_ONLY = {"custody.address", "custody.address_of", "custody.holding"}


def custody_host(req: HostRequest) -> Any:
    fn = HOST_FUNCTIONS.get(req.function)
    if fn is None:
        raise HostError(f"no host function {req.function!r}", code="VM_NO_HOST")
    req.charge(50)  # a host call costs like several contract steps
    try:
        return fn(req, _HostState(req), *req.args)
    except ExecutionFailed as exc:
        raise _host_fail(exc) from None
    except TypeError as exc:
        raise HostError(f"{req.function}: {exc}", code=str(Code.INVALID_PAYLOAD)) from None


# --- transactions and governance actions ------------------------------------------------

def _args_list(name: str, value: Any) -> list:
    if not isinstance(value, list):
        raise p.invalid(f"{name} must be a list")
    return value


def _steps(name: str, value: Any) -> int:
    limit = BLOCK_VM.limits.max_steps
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


def _call(ctx: TxContext, args: dict[str, Any]) -> None:
    if ctx.state.get(contract_key(args["contract"])) is None:
        raise ExecutionFailed(f"no contract {args['contract']!r}", Code.VM_NO_CONTRACT)
    try:
        result = BLOCK_VM.call(args["contract"], args["method"], args.get("args", []),
                               storage=StateStorage(ctx.state),
                               ctx=_vm_context(ctx, ctx.sender), host=custody_host,
                               steps=args.get("steps"))
    except VMError as exc:
        raise vm_error_to_tally(exc) from None
    apply_result(ctx, result.write_set, result.events)
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


def _compiles(source: str) -> str:
    try:
        return BLOCK_VM.compile(source).code_id.hex()
    except VMError as exc:
        raise vm_error_to_tally(exc) from None


def _check_deploy(state: BlockState, args: dict[str, Any]) -> None:
    if state.get(contract_key(args["name"])) is not None:
        raise ExecutionFailed(f"contract {args['name']!r} already exists", Code.ALREADY_EXISTS)
    _compiles(args["source"])


def _check_upgrade(state: BlockState, args: dict[str, Any]) -> None:
    if state.get(contract_key(args["name"])) is None:
        raise ExecutionFailed(f"no contract {args['name']!r}", Code.VM_NO_CONTRACT)
    _compiles(args["source"])


def _record_version(ctx: TxContext, name: str, source: str, proposal_id: str,
                    previous: dict[str, Any] | None) -> dict[str, Any]:
    code_id = _compiles(source)
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
    try:
        result = BLOCK_VM.deploy(args["name"], args["source"], args.get("args", []),
                                 storage=StateStorage(ctx.state),
                                 ctx=_vm_context(ctx, proposer), host=custody_host)
    except VMError as exc:
        raise vm_error_to_tally(exc) from None
    apply_result(ctx, result.write_set, result.events)
    _record_version(ctx, args["name"], args["source"], proposal_id, None)


def _apply_upgrade(ctx: TxContext, args: dict[str, Any], proposal: dict[str, Any],
                   proposal_id: str) -> None:
    """New code, same storage: the VM loads a contract's code from these two keys."""
    name, source = args["name"], args["source"]
    code_id = bytes.fromhex(_compiles(source))
    ctx.state.put(code_id_key(name), Raw(vm_encode(code_id)))
    ctx.state.put(source_key(name), Raw(vm_encode(source)))
    # The standard-library modules the new code imports, if no deploy wrote them yet.
    for key, raw in BLOCK_VM.library_writes(source, StateStorage(ctx.state)).items():
        ctx.state.put(key, Raw(raw))
    _record_version(ctx, name, source, proposal_id, ctx.state.get(contract_key(name)))


governance.register(governance.Action("contract.deploy", _parse_deploy, _check_deploy,
                                      _apply_deploy))
governance.register(governance.Action("contract.upgrade", _parse_upgrade, _check_upgrade,
                                      _apply_upgrade))

OPERATIONS = (
    Operation("contract.call", _parse_call, _call, "call a contract method"),
)
