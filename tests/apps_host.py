"""Test support for the application templates (tally/apps): the custody host functions
over a VM :class:`~tally.vm.testing.Harness`, and the small :class:`Env` the scenarios
are written against.

The host follows the custody interface the executor provides to contracts
(``host_call("custody.<fn>", ...)``), over plain keys in the harness's storage:

    custody/asset/<asset>            {"class", "name", "issuer", "controller", "supply", "status"}
    custody/holding/<asset>/<addr>   {"q": held, "p": pledged, "f": frozen}
    custody/role/<role>/<addr>       true   (granted outside the VM, as the chain admin would)
    custody/agent/<holder>/<agent>   true   (a holder appointed an agent)

values canonical CBOR. A contract's custody account is a 40-hex-digit address derived
from its name. An asset issued by a contract is *controlled* by it: only that contract
moves, mints or burns its units. Every change is an event with source ``"custody"``.

The scenarios in tests/test_apps_*.py see only :class:`Env` (deploy, call, query,
holding, events), so a node-backed ``Env`` (contract.call transactions on a real chain)
can run the same tests: add a factory to :data:`ENV_FACTORIES`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import cbor2
import pytest

from tally.vm import HostError, HostRequest, VMError
from tally.vm.testing import Harness

ASSET_CLASSES = ("security", "futures", "receivable", "document", "cash", "other")
_ADDRESS = re.compile(r"[0-9a-f]{40}")
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
EMPTY = {"q": 0, "p": 0, "f": 0}
MAX_QUANTITY = 2**63 - 1


def contract_address(name: str) -> str:
    """The custody address of contract ``name`` (the harness's derivation)."""
    return hashlib.sha256(b"tally/contract/" + name.encode()).digest()[:20].hex()


def account(label: str) -> str:
    """A stable 40-hex-digit test account for a label ("bank", "alice", ...)."""
    return hashlib.sha256(b"tally/test-account/" + label.encode()).digest()[:20].hex()


def _enc(value: Any) -> bytes:
    return cbor2.dumps(value, canonical=True)


def _dec(raw: bytes | None, default: Any = None) -> Any:
    return default if raw is None else cbor2.loads(raw)


def asset_key(asset: str) -> bytes:
    return f"custody/asset/{asset}".encode()


def holding_key(asset: str, holder: str) -> bytes:
    return f"custody/holding/{asset}/{holder}".encode()


def role_key(role: str, addr: str) -> bytes:
    return f"custody/role/{role}/{addr}".encode()


def agent_key(holder: str, agent: str) -> bytes:
    return f"custody/agent/{holder}/{agent}".encode()


# --- the host ---------------------------------------------------------------------------


def _fail(message: str, code: str) -> HostError:
    return HostError(message, code=code)


def _quantity(value: Any) -> int:
    if type(value) is not int or not 0 < value <= MAX_QUANTITY:
        raise _fail(f"a quantity is an int from 1 to {MAX_QUANTITY}, not {value!r}", "INVALID_PAYLOAD")
    return value


def _address(value: Any) -> str:
    if type(value) is not str or not _ADDRESS.fullmatch(value):
        raise _fail(f"not an address: {value!r}", "INVALID_PAYLOAD")
    return value


def _asset_id(value: Any) -> str:
    if type(value) is not str or not _IDENTIFIER.fullmatch(value):
        raise _fail(f"not an asset identifier: {value!r}", "INVALID_PAYLOAD")
    return value


def _args(request: HostRequest, n: int) -> tuple[Any, ...]:
    if len(request.args) != n:
        raise _fail(f"{request.function} takes {n} arguments", "INVALID_PAYLOAD")
    return request.args


def _get_holding(request: HostRequest, asset: str, holder: str) -> dict[str, int]:
    return _dec(request.get(holding_key(asset, holder)), EMPTY)


def _put_holding(request: HostRequest, asset: str, holder: str, h: dict[str, int]) -> None:
    if h["q"] == 0 and h["p"] == 0 and h["f"] == 0:
        request.delete(holding_key(asset, holder))
    else:
        request.put(holding_key(asset, holder), _enc(h))


def _asset(request: HostRequest, asset: str) -> dict[str, Any]:
    record = _dec(request.get(asset_key(asset)))
    if record is None:
        raise _fail(f"no asset {asset!r}", "NOT_FOUND")
    if record["status"] != "active":
        raise _fail(f"asset {asset!r} is retired", "ASSET_RETIRED")
    return record


def _controlled(request: HostRequest, asset: str) -> dict[str, Any]:
    record = _asset(request, asset)
    if record.get("controller") != request.contract:
        raise _fail(
            f"contract {request.contract!r} is not the controller of {asset!r}", "UNAUTHORISED"
        )
    return record


def _take(request: HostRequest, asset: str, holder: str, quantity: int) -> None:
    h = _get_holding(request, asset, holder)
    free = h["q"] - h["p"] - h["f"]
    if free < quantity:
        raise _fail(
            f"{holder} has {free} free units of {asset} (held {h['q']}, pledged {h['p']}, "
            f"frozen {h['f']}); {quantity} requested",
            "INSUFFICIENT_UNITS",
        )
    _put_holding(request, asset, holder, {**h, "q": h["q"] - quantity})


def _add(request: HostRequest, asset: str, holder: str, quantity: int) -> None:
    h = _get_holding(request, asset, holder)
    _put_holding(request, asset, holder, {**h, "q": h["q"] + quantity})


def _move(request: HostRequest, asset: str, holder: str, to: str, quantity: int) -> None:
    if to == holder:
        raise _fail("a transfer needs a recipient other than the holder", "INVALID_PAYLOAD")
    _take(request, asset, holder, quantity)
    _add(request, asset, to, quantity)
    request.emit(
        "custody.transfer",
        {"asset": asset, "from": holder, "to": to, "quantity": quantity, "by": request.contract},
        source="custody",
    )


def _h_address(request: HostRequest) -> str:
    _args(request, 0)
    return contract_address(request.contract)


def _h_address_of(request: HostRequest) -> str:
    (name,) = _args(request, 1)
    if type(name) is not str or not name:
        raise _fail("a contract name is a non-empty str", "INVALID_PAYLOAD")
    return contract_address(name)


def _h_holding(request: HostRequest) -> dict[str, int]:
    asset, holder = _args(request, 2)
    return dict(_get_holding(request, _asset_id(asset), _address(holder)))


def _h_issue(request: HostRequest) -> None:
    asset, asset_class, name, quantity, to = _args(request, 5)
    asset, to, quantity = _asset_id(asset), _address(to), _quantity(quantity)
    if asset_class not in ASSET_CLASSES:
        raise _fail(f"asset class is one of {', '.join(ASSET_CLASSES)}", "INVALID_PAYLOAD")
    if type(name) is not str or not 0 < len(name) <= 200:
        raise _fail("an asset name is 1 to 200 characters", "INVALID_PAYLOAD")
    me = contract_address(request.contract)
    if request.get(role_key("issuer", me)) is None:
        raise _fail(f"{me} (contract {request.contract!r}) lacks role issuer", "UNAUTHORISED")
    if request.get(asset_key(asset)) is not None:
        raise _fail(f"asset {asset!r} already exists", "ALREADY_EXISTS")
    record = {
        "class": asset_class,
        "name": name,
        "issuer": me,
        "controller": request.contract,
        "supply": quantity,
        "status": "active",
    }
    request.put(asset_key(asset), _enc(record))
    _add(request, asset, to, quantity)
    request.emit(
        "asset.issue",
        {"asset": asset, "class": asset_class, "name": name, "to": to, "quantity": quantity,
         "controller": request.contract},
        source="custody",
    )


def _h_mint(request: HostRequest) -> None:
    asset, to, quantity = _args(request, 3)
    asset, to, quantity = _asset_id(asset), _address(to), _quantity(quantity)
    record = _controlled(request, asset)
    request.put(asset_key(asset), _enc({**record, "supply": record["supply"] + quantity}))
    _add(request, asset, to, quantity)
    request.emit(
        "asset.mint", {"asset": asset, "to": to, "quantity": quantity}, source="custody"
    )


def _h_burn(request: HostRequest) -> None:
    asset, holder, quantity = _args(request, 3)
    asset, holder, quantity = _asset_id(asset), _address(holder), _quantity(quantity)
    record = _controlled(request, asset)
    _take(request, asset, holder, quantity)
    # A controlled asset stays active at supply 0: its controller may mint again.
    request.put(asset_key(asset), _enc({**record, "supply": record["supply"] - quantity}))
    request.emit(
        "asset.burn", {"asset": asset, "holder": holder, "quantity": quantity}, source="custody"
    )


def _h_transfer(request: HostRequest) -> None:
    asset, to, quantity = _args(request, 3)
    asset, to, quantity = _asset_id(asset), _address(to), _quantity(quantity)
    record = _asset(request, asset)
    controller = record.get("controller")
    if controller is not None and controller != request.contract:
        raise _fail(f"{asset!r} moves only through contract {controller!r}", "UNAUTHORISED")
    _move(request, asset, contract_address(request.contract), to, quantity)


def _h_transfer_from(request: HostRequest) -> None:
    asset, holder, to, quantity = _args(request, 4)
    asset, holder = _asset_id(asset), _address(holder)
    to, quantity = _address(to), _quantity(quantity)
    record = _asset(request, asset)
    controller = record.get("controller")
    if controller is not None:
        if controller != request.contract:
            raise _fail(f"{asset!r} moves only through contract {controller!r}", "UNAUTHORISED")
    elif request.get(agent_key(holder, contract_address(request.contract))) is None:
        raise _fail(
            f"contract {request.contract!r} is not an agent of {holder}", "UNAUTHORISED"
        )
    _move(request, asset, holder, to, quantity)


HOST_FUNCTIONS: dict[str, Callable[[HostRequest], Any]] = {
    "custody.address": _h_address,
    "custody.address_of": _h_address_of,
    "custody.holding": _h_holding,
    "custody.issue": _h_issue,
    "custody.mint": _h_mint,
    "custody.burn": _h_burn,
    "custody.transfer": _h_transfer,
    "custody.transfer_from": _h_transfer_from,
}


def custody_host(request: HostRequest) -> Any:
    """The host hook: serves ``host_call("custody.*", ...)`` over the call's overlay."""
    fn = HOST_FUNCTIONS.get(request.function)
    if fn is None:
        raise _fail(f"unknown host function {request.function!r}", "HOST_UNKNOWN")
    return fn(request)


# --- the environment the scenarios use ------------------------------------------------------


class CallFailed(Exception):
    """A call (or deploy) failed: ``code`` is the receipt code, ``message`` its text,
    ``contract`` the contract that raised it where known."""

    def __init__(self, code: str, message: str, contract: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.contract = contract


@dataclass(frozen=True)
class Emitted:
    source: str  # the contract's name, or "custody"
    name: str
    data: Any


class Env(Protocol):
    """What the scenarios need from a chain. Accounts are 40-hex-digit addresses."""

    def account(self, label: str) -> str: ...
    def contract_address(self, name: str) -> str: ...
    def grant_issuer(self, contract: str) -> None: ...
    def deploy(self, name: str, source: str, *args: Any, caller: str) -> None: ...
    def call(self, contract: str, method: str, *args: Any, caller: str) -> Any: ...
    def query(self, contract: str, method: str, *args: Any) -> Any: ...
    def holding(self, asset: str, holder: str) -> dict[str, int]: ...
    def events(self) -> list[Emitted]: ...  # every event so far, oldest first
    def advance_time(self, ms: int) -> None: ...


class HarnessEnv:
    """:class:`Env` over a VM :class:`Harness` with :func:`custody_host`."""

    def __init__(self) -> None:
        self.h = Harness(host=custody_host)

    def account(self, label: str) -> str:
        return account(label)

    def contract_address(self, name: str) -> str:
        return contract_address(name)

    def grant_issuer(self, contract: str) -> None:
        self.h.storage.data[role_key("issuer", contract_address(contract))] = _enc(True)

    def _run(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except VMError as e:
            raise CallFailed(e.code, e.message, getattr(e, "contract", None)) from e

    def deploy(self, name: str, source: str, *args: Any, caller: str) -> None:
        self._run(lambda: self.h.deploy(name, source, *args, caller=caller))

    def call(self, contract: str, method: str, *args: Any, caller: str) -> Any:
        return self._run(lambda: self.h.call(contract, method, *args, caller=caller))

    def query(self, contract: str, method: str, *args: Any) -> Any:
        return self._run(lambda: self.h.query(contract, method, *args, caller=account("reader")))

    def holding(self, asset: str, holder: str) -> dict[str, int]:
        return dict(_dec(self.h.storage.data.get(holding_key(asset, holder)), EMPTY))

    def events(self) -> list[Emitted]:
        return [Emitted(e.contract, e.name, e.data) for e in self.h.events]

    def advance_time(self, ms: int) -> None:
        self.h.time_ms += ms
        self.h.height += 1

    # Harness-only: the raw state, to show a failed call changed nothing at all.
    def snapshot(self) -> dict[bytes, bytes]:
        return dict(self.h.storage.data)


#: Environments the scenarios run in; a node-backed one can be added here.
ENV_FACTORIES: dict[str, Callable[[], Env]] = {"harness": HarnessEnv}


def env_fixture() -> Any:
    """A test module's ``env`` fixture: one run per environment in :data:`ENV_FACTORIES`
    (``env = env_fixture()`` at module level)."""

    @pytest.fixture(params=sorted(ENV_FACTORIES), name="env")
    def make_env(request: pytest.FixtureRequest) -> Env:
        return ENV_FACTORIES[request.param]()

    return make_env


def fails(env: Env, contract: str, method: str, *args: Any, caller: str) -> CallFailed:
    """Call and expect a failure; returns it for the test to inspect."""
    with pytest.raises(CallFailed) as info:
        env.call(contract, method, *args, caller=caller)
    return info.value


def events_named(env: Env, name: str, source: str | None = None) -> list[Emitted]:
    return [e for e in env.events() if e.name == name and (source is None or e.source == source)]
