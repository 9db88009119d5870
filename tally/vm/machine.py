"""The VM: deploy, call and query contracts over a storage backend.

The executor owns transactions, fees and the state store; the VM owns contract
code, metering and the contracts' storage keys. One call of :meth:`VM.deploy`,
:meth:`VM.call` or :meth:`VM.query` is one *execution*: it reads through a
:class:`StorageBackend`, buffers every write in an overlay, and either returns an
:class:`ExecutionResult` holding the write set or raises a :class:`VMError` having
discarded everything. Contract-to-contract calls run inside the same execution,
sharing its budgets, each behind an overlay checkpoint.

Invariants (docs/decisions/0506-vm-memory-and-nesting-accounting.md): every
failure that leaves the VM is a typed :class:`VMError`, whose message names
contract-level things only; an outcome never depends on the host's memory or
Python stack (recursion is bounded by the VM's own counters, and an execution the
host's recursion limit stopped is run again with the room it needs); values
crossing a boundary and values decoded from storage are charged by their size
before they are copied or handed out.
"""

from __future__ import annotations

import re
import sys
import threading
import types
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from threading import get_ident
from typing import Any, TypeVar

from tally.errors import Code

from . import stdlib, values
from .compiler import (
    REQUIRE_MESSAGE,
    CompiledContract,
    MethodSpec,
    code_id_of,
    compile_contract,
    is_valid_contract_name,
    library,
)
from .errors import (
    REVERTIBLE,
    AlreadyDeployed,
    BadArguments,
    ContractError,
    ContractNotFound,
    ContractRejected,
    ContractRuntimeError,
    Forbidden,
    HostError,
    InvalidValue,
    MemoryLimitExceeded,
    MethodNotFound,
    RecursionLimitExceeded,
    ViewWriteError,
    VMBusy,
    VMError,
)
from .guards import (
    _NO_MEMBER,
    ContextView,
    ContractInstance,
    Meter,
    instance_getattr,
    make_budget,
    make_guards,
    scrub,
)
from .limits import DEFAULT_LIMITS, Limits
from .storage import MISSING, Overlay, StorageBackend, code_id_key, contract_prefix, source_key

_U64 = 1 << 64
_T = TypeVar("_T")
#: The runtime's events and frames between executions: empty, and nothing can be
#: appended to them by mistake.
_IDLE: tuple[Any, ...] = ()
_encode_int = values.encode_int
_snapshot = values.snapshot
#: Steps for a storage read and for a storage write or event, on top of the AST
#: nodes around them: each is a few microseconds of work (see docs/contracts.md).
READ_STEPS = 5
WRITE_STEPS = 20

# --------------------------------------------------------------------------------------
# Public data types
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What the executor tells the VM about the transaction being executed."""

    #: The account that sent the call (for a nested call the VM puts the calling contract here).
    caller: str
    #: Block height.
    height: int
    #: Engine time of the block, integer milliseconds (never the wall clock).
    time_ms: int
    #: Transaction id.
    tx_id: bytes
    #: The account that signed the transaction; defaults to ``caller``.
    origin: str | None = None


@dataclass(slots=True)
class Event:
    """An event emitted by a contract (or by a host function on its behalf)."""

    contract: str
    name: str
    data: Any


@dataclass(slots=True)
class ExecutionResult:
    """The outcome of a successful execution. Nothing is written until the executor
    applies ``write_set`` (``None`` values mean delete)."""

    write_set: dict[bytes, bytes | None]
    events: list[Event]
    return_value: Any
    steps_used: int


class HostRequest:
    """One host-function call, as the host hook receives it.

    ``contract`` is the calling contract: for a custody transfer it is the account
    debited. Reads and writes through :meth:`get`/:meth:`put`/:meth:`delete` land in
    the execution's overlay, so they are reverted together with the contract's own
    writes if anything fails later. The request is only valid while the hook runs.
    """

    __slots__ = ("function", "args", "contract", "context", "read_only", "_rt", "_open")

    def __init__(self, rt: _Runtime, function: str, args: tuple[Any, ...], read_only: bool) -> None:
        frame = rt.frame
        self.function = function
        self.args = args
        self.contract: str = frame.contract
        self.context = Context(frame.caller, frame.height, frame.time_ms, frame.tx_id, frame.origin)
        self.read_only = read_only
        self._rt = rt
        self._open = True

    def _check(self, writing: bool) -> _Runtime:
        if not self._open:
            raise HostError("host request used after the host hook returned")
        if writing and self.read_only:
            raise ViewWriteError(f"host function {self.function} cannot write in a read-only call")
        return self._rt

    def get(self, key: bytes) -> bytes | None:
        return self._check(False).overlay.get_raw(key)

    def put(self, key: bytes, value: bytes) -> None:
        if type(key) is not bytes or type(value) is not bytes:
            raise TypeError("keys and values are bytes")
        self._check(True).overlay.put(key, value)

    def delete(self, key: bytes) -> None:
        self._check(True).overlay.put(key, None)

    def emit(self, name: str, data: Any = None, source: str | None = None) -> None:
        """Record an event (attributed to ``source``, by default the calling contract)."""
        self._check(True).record_event(source or self.contract, name, data)

    def charge(self, steps: int) -> None:
        """Charge the call's step budget for work the host does."""
        self._check(False).guards["step"](int(steps))


#: The host hook: receives each ``host_call`` and returns a storable value.
Host = Callable[[HostRequest], Any]


# --------------------------------------------------------------------------------------
# Runtime objects contracts see
# --------------------------------------------------------------------------------------


class Contract:
    """Optional base class of a contract (it adds nothing; it documents intent)."""


class _Declaration:
    __slots__ = ("kind", "key_type", "value_type", "default")

    def __init__(
        self, kind: str, key_type: type | None, value_type: type | None, default: Any
    ) -> None:
        self.kind = kind
        self.key_type = key_type
        self.value_type = value_type
        self.default = default


class _Frame:
    """One contract activation: which contract runs, on whose behalf."""

    __slots__ = ("contract", "caller", "origin", "height", "time_ms", "tx_id")

    def __init__(
        self, contract: str, caller: str, origin: str, height: int, time_ms: int, tx_id: bytes
    ) -> None:
        self.contract = contract
        self.caller = caller
        self.origin = origin
        self.height = height
        self.time_ms = time_ms
        self.tx_id = tx_id


class _Slot:
    """A typed storage location (a Var, or the shape shared by a Map's entries)."""

    __slots__ = (
        "rt",
        "meter",
        "key",
        "value_type",
        "nullable",
        "default",
        "default_raw",
        "default_scalar",
        "label",
    )

    def __init__(self, rt: _Runtime, key: bytes, decl: _Declaration, label: str) -> None:
        self.rt = rt
        self.meter = rt.meter  # one Meter per runtime, reset in place for each call
        self.key = key
        self.value_type = decl.value_type
        self.default = decl.default
        self.nullable = decl.default is None
        self.default_raw = values.encode(decl.default)
        self.default_scalar = values.is_scalar(decl.default)
        self.label = label

    def missing(self) -> Any:
        """The declared default, for a key with nothing stored (lists and dicts fresh)."""
        if self.default_scalar:
            return self.default
        value = values.decode(self.default_raw)
        self.rt.footprint(value)  # a fresh copy on every read, like a stored list
        return value

    def read(self, key: bytes) -> Any:
        meter = self.meter
        meter.steps -= READ_STEPS
        if meter.steps < 0:
            self.rt.budget_exceeded()
        overlay = self.rt.overlay
        value = overlay.values.get(key, MISSING)
        if value is MISSING:
            value = overlay.load(key)
            if value is MISSING:
                return self.missing()
        return value

    def write(self, key: bytes, value: Any) -> None:
        rt = self.rt
        if self.meter.read_only:
            raise ViewWriteError(f"cannot write {self.label} in a read-only call")
        vt = self.value_type
        if vt is not None and type(value) is not vt and not (value is None and self.nullable):
            raise InvalidValue(f"{self.label} holds {vt.__name__}, not {type(value).__name__}")
        if type(value) is int and -_U64 <= value < _U64:
            raw = _encode_int(value)
        else:
            raw = rt.encode(value)
        rt.charge_write(key, raw)
        rt.overlay.put(key, raw, value)

    # Data-descriptor protocol: a Var is a class attribute of the contract's class.
    def __get__(self, instance: Any, owner: Any = None) -> Any:
        if instance is None:
            return self
        # `self.x`: the body of read(), inlined.
        key = self.key
        meter = self.meter
        meter.steps -= READ_STEPS
        if meter.steps < 0:
            self.rt.budget_exceeded()
        overlay = self.rt.overlay
        value = overlay.values.get(key, MISSING)
        if value is MISSING:
            value = overlay.load(key)
            if value is MISSING:
                return self.missing()
        return value

    def __set__(self, instance: Any, value: Any) -> None:
        self.write(self.key, value)

    def __delete__(self, instance: Any) -> None:
        raise Forbidden("storage fields cannot be deleted")

    def delete(self, key: bytes) -> None:
        if self.meter.read_only:
            raise ViewWriteError(f"cannot write {self.label} in a read-only call")
        self.rt.charge_write(key, b"")
        self.rt.overlay.put(key, None)


class MapProxy:
    """A ``Map`` field of a running contract: ``m[k]``, ``m[k] = v``, ``del m[k]``,
    ``k in m``, ``m.get(k, default)``. Missing keys read as the declared default."""

    __slots__ = ("slot", "rt", "meter", "prefix", "key_type", "int_values", "keys", "limits")

    def __init__(self, slot: _Slot, key_type: type, limits: Limits) -> None:
        self.slot = slot
        self.rt = slot.rt
        self.meter = slot.meter
        self.prefix = slot.key + b"/"
        self.key_type = key_type
        #: Whether an int of at most 64 bits may be stored without further checks.
        self.int_values = slot.value_type is int or slot.value_type is None
        self.keys: dict[Any, bytes] = {}
        self.limits = limits

    def key(self, k: Any) -> bytes:
        raw = self.keys.get(k) if type(k) is self.key_type else None
        if raw is not None:
            return raw
        if type(k) is not self.key_type:
            raise InvalidValue(
                f"{self.slot.label} keys are {self.key_type.__name__}, not {type(k).__name__}"
            )
        raw = self.prefix + values.encode(
            k, max_bytes=self.limits.max_key_bytes, max_int_bits=self.limits.max_int_bits
        )
        if len(self.keys) > 4096:
            self.keys.clear()
        self.keys[k] = raw
        return raw

    def __getitem__(self, k: Any) -> Any:
        # `m[k]`: key() and _Slot.read, inlined.
        key = self.keys.get(k) if type(k) is self.key_type else None
        if key is None:
            key = self.key(k)
        meter = self.meter
        meter.steps -= READ_STEPS
        if meter.steps < 0:
            self.rt.budget_exceeded()
        overlay = self.rt.overlay
        value = overlay.values.get(key, MISSING)
        if value is MISSING:
            value = overlay.load(key)
            if value is MISSING:
                return self.slot.missing()
        return value

    def __setitem__(self, k: Any, value: Any) -> None:
        key = self.keys.get(k) if type(k) is self.key_type else None
        if key is None:
            key = self.key(k)
        if type(value) is not int or not self.int_values or not -_U64 <= value < _U64:
            self.slot.write(key, value)
            return
        # `balances[to] = n`: the write path of _Slot.write and Overlay.put, inlined.
        meter = self.meter
        if meter.read_only:
            raise ViewWriteError(f"cannot write {self.slot.label} in a read-only call")
        raw = _encode_int(value)
        meter.steps -= WRITE_STEPS
        meter.memory -= len(key) + len(raw) + 64
        if meter.steps < 0 or meter.memory < 0:
            self.rt.budget_exceeded()
        overlay = self.rt.overlay
        writes = overlay.writes
        journal = overlay.journal
        if journal is not None:  # Overlay.put's journal entry, once a checkpoint exists
            journal.append((key, writes.get(key, MISSING)))
        writes[key] = raw
        overlay.values[key] = value

    def __delitem__(self, k: Any) -> None:
        self.slot.delete(self.key(k))

    def __iter__(self) -> Any:
        # Without this, Python would iterate by calling __getitem__(0), (1)... forever.
        raise TypeError(
            "maps are not iterable: storage has no range reads; keep a Var(list) of keys"
        )

    def contains(self, k: Any) -> bool:
        return self.slot.rt.overlay.get_raw(self.key(k)) is not None

    def get(self, k: Any, default: Any = None) -> Any:
        value = self.slot.rt.overlay.get_value(self.key(k))
        return default if value is MISSING else value


# --------------------------------------------------------------------------------------
# The runtime: state of the execution in progress, plus everything bound to it
# --------------------------------------------------------------------------------------


#: A qualified name of a function nested in another (``f.<locals>.g``): VM
#: internals, which must not appear in messages (they name contract-level things).
_INTERNAL_NAME = re.compile(r"[\w.]*<locals>\.")
#: Longest argument text a description quotes.
_QUOTE = 80


def _safe_repr(v: Any) -> str:
    """A short, bounded description of a value carried by a Python error: never
    ``repr`` of a container (which recurses, and is exponential on a DAG) or of a
    huge int (past CPython's int-to-text limit it raises ``ValueError``)."""
    t = type(v)
    if t is int:
        return repr(v) if -_U64 < v < _U64 else f"<int of {v.bit_length()} bits>"
    if t is str or t is bytes:
        return repr(v[:_QUOTE]) + ("..." if len(v) > _QUOTE else "")
    if t is bool or v is None:
        return repr(v)
    if t is list or t is tuple or t is dict:
        return f"<{'list' if t is tuple else t.__name__} of {len(v)} items>"
    return "<value>"


def _message(exc: BaseException) -> str:
    args = exc.args
    if isinstance(exc, KeyError) and len(args) == 1:
        return _safe_repr(args[0])  # str(KeyError(k)) is repr(k)
    if len(args) == 1 and type(args[0]) is str:
        return args[0][:600]
    if isinstance(exc, UnicodeError):  # CPython's text quotes one byte or character
        return str(exc)[:600]
    return ", ".join(_safe_repr(a) for a in args[:4])


def _describe(exc: BaseException) -> str:
    """A deterministic one-line description of a Python error in contract code,
    bounded in size and in the work to make it, naming no VM internals."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.startswith("<contract "):
            line = tb.tb_lineno
        tb = tb.tb_next
    try:
        text = scrub(_INTERNAL_NAME.sub("", _message(exc)))
    except Exception:  # a description must never fail; the type name will do
        text = ""
    where = f" (line {line})" if line else ""
    return f"{type(exc).__name__}: {text}{where}" if text else f"{type(exc).__name__}{where}"


class _HostRecursion(RecursionLimitExceeded):
    """CPython's recursion limit, not the VM's counters, stopped contract code: the
    host gave the execution less room than :func:`_recursion_need`. The entry
    points run the execution again with that room (see `_with_headroom`)."""


def translate(exc: BaseException) -> BaseException:
    """The typed error a Python exception from contract code stands for.

    A ``RecursionError`` becomes `_HostRecursion`, which the entry points answer by
    running the execution again with the room the VM needs. A ``MemoryError`` can
    only be the host's (the memory budget is charged before allocating, and sized
    well below any node's memory), so it stays ``VM_MEMORY_LIMIT``."""
    if isinstance(exc, VMError):
        return exc
    if isinstance(exc, RecursionError):
        return _HostRecursion("Python recursion limit reached")
    if isinstance(exc, MemoryError):
        return MemoryLimitExceeded("out of memory")
    if isinstance(exc, Exception):
        return ContractRuntimeError(_describe(exc))
    return exc  # KeyboardInterrupt, SystemExit: the host's business


def _recursion_need(limits: Limits) -> int:
    """Python recursion levels one execution may use above its entry: per contract
    frame the frame and up to three guard or VM frames around it (a builtin calling
    a ``key=`` lambda, ``call``'s own frames), C recursion over a value nested up to
    ``max_nesting`` at the deepest frame, ``max_value_depth`` twice (encode and
    decode), and a margin."""
    return (
        4 * limits.max_frames
        + 4 * limits.max_call_depth
        + limits.max_nesting
        + 2 * limits.max_value_depth
        + 100
    )


def _stack_depth() -> int:
    depth = 0
    frame = sys._getframe(1)
    while frame is not None:
        depth += 1
        frame = frame.f_back
    return depth


def _with_headroom(need: int, run: Callable[[], _T]) -> _T:
    """``run()``; if CPython's recursion limit stopped it, raise the limit to leave
    ``need`` levels above the current stack and run it once more.

    Every recursion an execution can cause is bounded by the VM's own counters
    (frames, nested calls, ``max_nesting``, ``max_value_depth``) to fewer than
    ``need`` levels, so with that room it never meets the limit, and its outcome is
    the one a host with a generous limit gets at once. An execution has no effect
    until the executor applies its result, so running it again is safe. The limit
    is only ever raised, and only for a host that set it low or calls the VM from
    deep in its own stack; checking the room up front would cost every call."""
    try:
        return run()
    except (RecursionError, _HostRecursion):
        pass
    return _rerun(need, run)


#: Python recursion levels the compiler may use per level of a contract's AST (its
#: visitors, CPython's own parser and code generator): a generous bound.
_COMPILE_FRAMES_PER_LEVEL = 8


def _ensure_room(need: int) -> None:
    """Raise the recursion limit, if need be, to leave ``need`` levels above the
    current stack (``sys._getframe(n)`` fails when the stack is shallower than n)."""
    limit = sys.getrecursionlimit()
    try:
        sys._getframe(limit - need)
    except ValueError:
        return
    sys.setrecursionlimit(_stack_depth() + need)


def _rerun(need: int, run: Callable[[], _T]) -> _T:
    """The second half of `_with_headroom`: raise the limit, run again."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), _stack_depth() + need))
    try:
        return run()
    except RecursionError:  # a VM bug: some recursion is not bounded by its counters
        raise RecursionLimitExceeded("Python recursion limit reached") from None


#: Containers of at most this many scalars cross a boundary for the flat charge of
#: the operation (a call, an event, a return value); anything else pays per node.
_SMALL = 8


def _flat(value: Any, t: type) -> bool:
    """Whether a container of at most `_SMALL` items holds no container and no
    string of 64 characters or more (dict keys are scalars or not storable)."""
    for v in (*value, *value.values()) if t is dict else value:
        tv = type(v)
        if tv is list or tv is dict or tv is tuple or ((tv is str or tv is bytes) and len(v) >= 64):
            return False
    return True


class _Runtime:
    """Everything one VM instance binds contracts to. Contract namespaces and
    instances are built once and reused; per-call state lives in the fields that
    :meth:`begin` resets."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.int_limit = 1 << limits.max_int_bits
        self.max_value_bytes = limits.max_value_bytes
        self.max_value_depth = limits.max_value_depth
        self.max_int_bits = limits.max_int_bits
        self.id_keys: dict[str, bytes] = {}
        self.meter = Meter()
        guards, builtins, attr_handlers = make_guards(self.meter, limits)
        self.guards = guards
        #: Charges for a copy of a value: boundary copies, values decoded from storage.
        self.footprint = make_budget(self.meter, limits).footprint
        self.overlay: Overlay = None  # type: ignore[assignment]
        self.events: list[Event] = _IDLE  # type: ignore[assignment]
        self.frames: list[_Frame] = _IDLE  # type: ignore[assignment]
        self.frame: _Frame = None  # type: ignore[assignment]
        self.host: Host | None = None
        self.ctx_view = ContextView(self)
        self.namespaces: OrderedDict[bytes, dict[str, Any]] = OrderedDict()
        self.libraries: dict[str, dict[str, Any]] = {}
        self.instances: OrderedDict[tuple[str, bytes | None], ContractInstance] = OrderedDict()

        self.builtins = dict(builtins)
        import builtins as _py_builtins

        self.builtins["__build_class__"] = _py_builtins.__build_class__
        type_of = guards["type_of"]
        type_of[Contract] = Contract

        attr_handlers[MapProxy] = self._map_getattr
        self.attr_handlers = attr_handlers
        guards["in_handlers"][MapProxy] = MapProxy.contains

        def map_decl(key_type: Any, value_type: Any, *, default: Any = _NO_MEMBER) -> _Declaration:
            return self._declaration("Map", key_type, value_type, default)

        def var_decl(value_type: Any = None, *, default: Any = _NO_MEMBER) -> _Declaration:
            return self._declaration("Var", None, value_type, default)

        def view(fn: Any) -> Any:
            return fn

        def require(condition: Any, message: Any = REQUIRE_MESSAGE) -> None:
            if not condition:
                raise ContractError(message)

        augitem, iadd = guards["_augitem"], guards["_iadd"]
        meter = self.meter
        int_limit = self.int_limit
        too_big = f"integer larger than {limits.max_int_bits} bits"

        def map_add(obj: Any, k: Any, value: Any) -> None:
            """``self.<map>[k] += value`` (what the compiler writes for it): the
            ``_augitem`` guard with MapProxy's read and write inlined, so the same
            checks and charges in one call instead of three."""
            if type(obj) is not MapProxy:
                augitem(obj, k, "+", value)
                return
            key = obj.keys.get(k) if type(k) is obj.key_type else None
            if key is None:
                key = obj.key(k)
            # MapProxy.__getitem__
            meter.steps -= READ_STEPS
            if meter.steps < 0:
                self.budget_exceeded()
            overlay = self.overlay
            current = overlay.values.get(key, MISSING)
            if current is MISSING:
                current = overlay.load(key)
                if current is MISSING:
                    current = obj.slot.missing()
            if type(current) is not int or type(value) is not int:
                obj[k] = iadd(current, value)
                return
            result = current + value
            if not -int_limit < result < int_limit:
                raise MemoryLimitExceeded(too_big)
            if not obj.int_values or not -_U64 <= result < _U64:
                obj.slot.write(key, result)
                return
            # MapProxy.__setitem__'s write path
            if meter.read_only:
                raise ViewWriteError(f"cannot write {obj.slot.label} in a read-only call")
            raw = _encode_int(result)
            meter.steps -= WRITE_STEPS
            meter.memory -= len(key) + len(raw) + 64
            if meter.steps < 0 or meter.memory < 0:
                self.budget_exceeded()
            writes = overlay.writes
            journal = overlay.journal
            if journal is not None:
                journal.append((key, writes.get(key, MISSING)))
            writes[key] = raw
            overlay.values[key] = result

        self.runtime_names: dict[str, Any] = {
            "Contract": Contract,
            "Map": map_decl,
            "Var": var_decl,
            "view": view,
            "ctx": self.ctx_view,
            "emit": self.emit,
            "require": require,
            "ContractError": ContractError,
            # what the compiler writes for `require(test, "message")` (see visit_Expr)
            "_require_failed": ContractError,
            # and for `self.<map>[k] += v` (see visit_AugAssign)
            "_mapadd": map_add,
            # and for `emit("Name", {"key": value, ...})` (see visit_Expr)
            "_emitrec": self.emit_record,
            "call": self.call,
            "view_call": self.view_call,
            "try_call": self.try_call,
            "host_call": self.host_call,
        }

    # -- declarations and loading ------------------------------------------------------

    def _declaration(self, kind: str, key_type: Any, value_type: Any, default: Any) -> _Declaration:
        type_of = self.guards["type_of"]
        kt = type_of.get(key_type) if key_type is not None else None
        vt = type_of.get(value_type) if value_type is not None else None
        if value_type is not None and vt is None:
            raise ContractRejected(f"{kind} value type must be int, str, bytes, bool, list or dict")
        if default is _NO_MEMBER:
            zero = {int: 0, str: "", bytes: b"", bool: False, list: [], dict: {}}
            default = zero.get(vt) if vt is not None else None
        values.encode(default)  # must be storable
        if vt is not None and default is not None and type(default) is not vt:
            raise ContractRejected(f"{kind} default must be a {vt.__name__} or None")
        return _Declaration(kind, kt, vt, default)

    def namespace(self, compiled: CompiledContract) -> dict[str, Any]:
        ns = self.namespaces.get(compiled.code_id)
        if ns is not None:
            self.namespaces.move_to_end(compiled.code_id)
            return ns
        ns = self._load_module(compiled.code, "contract", compiled.imports)
        self.namespaces[compiled.code_id] = ns
        if len(self.namespaces) > 256:
            self.namespaces.popitem(last=False)
        return ns

    def library_namespace(self, module: str) -> dict[str, Any]:
        """The loaded standard-library module (tally.vm.stdlib), once per VM. Its
        functions see the same runtime as contracts: they run in the caller's frame."""
        ns = self.libraries.get(module)
        if ns is None:
            ns = self.libraries[module] = self._load_module(library(module).code, module, ())
        return ns

    def _load_module(
        self, code: Any, label: str, imports: tuple[tuple[str, str, str], ...]
    ) -> dict[str, Any]:
        ns = {"__builtins__": self.builtins, "__name__": label}
        ns.update(self.guards)
        ns.update(self.runtime_names)
        for module, name, bound in imports:  # bound before the module runs
            ns[bound] = self.library_namespace(module)[name]
        # Loading is not charged to the call that triggers it: whether a module is
        # already loaded differs between nodes, and results must not.
        saved = self.meter.save()
        self.meter.reset(self.limits.load_steps, self.limits.max_memory)
        try:
            exec(code, ns)
        except VMError as e:
            if isinstance(e, _HostRecursion):
                raise  # the host's limit, not the module's fault: see _with_headroom
            raise ContractRejected(f"{label} module failed to load: {e}") from None
        except RecursionError:
            raise  # as above
        except Exception as e:
            raise ContractRejected(f"{label} module failed to load: {_describe(e)}") from None
        finally:
            self.meter.restore(saved)
        return ns

    def instance(self, name: str, compiled: CompiledContract, cache_key: bytes) -> ContractInstance:
        key = (name, cache_key)
        inst = self.instances.get(key)
        if inst is not None:
            return inst
        ns = self.namespace(compiled)
        cls = ns[compiled.class_name]
        members: dict[str, Any] = {"__slots__": ()}
        functions: dict[str, Any] = {}
        prefix = contract_prefix(name)
        for attr, value in vars(cls).items():
            if attr.startswith("_"):
                continue
            if isinstance(value, _Declaration):
                slot = _Slot(self, prefix + attr.encode("ascii"), value, f"{name}.{attr}")
                if value.kind == "Map":
                    members[attr] = MapProxy(slot, value.key_type, self.limits)  # type: ignore[arg-type]
                else:
                    members[attr] = slot  # a data descriptor: self.x reads, self.x = v writes
            else:
                if isinstance(value, types.FunctionType):
                    functions[attr] = value
                members[attr] = value
        klass = type(compiled.class_name, (ContractInstance,), members)
        inst = klass(name, compiled, functions)
        self.attr_handlers[klass] = instance_getattr  # see ContractInstance
        self.guards["setattr_handlers"][klass] = self._instance_setattr
        self.instances[key] = inst
        if len(self.instances) > 1024:
            self.instances.popitem(last=False)
        return inst

    # -- attribute handlers ----------------------------------------------------------

    def _instance_setattr(self, obj: ContractInstance, name: str, value: Any) -> None:
        if not isinstance(getattr(type(obj), name, None), _Slot):
            raise Forbidden(f"only Var fields can be assigned ({name!r} is not one)")
        setattr(obj, name, value)

    def _map_getattr(self, obj: MapProxy, name: str) -> Any:
        if name == "get":
            return obj.get
        raise Forbidden(f"maps offer [], in, del and get() (not {name!r})")

    # -- values at boundaries --------------------------------------------------------

    def charge_write(self, key: bytes, raw: bytes) -> None:
        """A write costs steps, and its bytes stay in the overlay until the end of
        the call, so they count against the memory budget too."""
        meter = self.meter
        meter.steps -= WRITE_STEPS
        meter.memory -= len(key) + len(raw) + 64
        if meter.steps < 0 or meter.memory < 0:
            self.budget_exceeded()

    def budget_exceeded(self) -> None:
        """Raise the error for whichever budget an inlined charge took below zero."""
        self.guards["alloc"](0)  # raises if memory is below zero
        self.guards["step"](0)  # raises if steps are

    def encode(self, value: Any) -> bytes:
        lim = self.limits
        raw = values.encode(
            value,
            max_bytes=lim.max_value_bytes,
            max_depth=lim.max_value_depth,
            max_int_bits=lim.max_int_bits,
        )
        n = len(raw)
        if n >= 64:
            self.guards["alloc"](n)
        return raw

    def copy_value(self, value: Any) -> Any:
        """Validate a value crossing a boundary (between contracts, from a host, out
        as a return value or event) and cut any aliasing: the receiver gets a copy."""
        t = type(value)
        # Scalars are immutable: checking them is enough.
        if t is int:
            if -self.int_limit < value < self.int_limit:
                return value
        elif t is str:
            if value.isascii() and len(value) <= self.max_value_bytes:
                return value
        elif t is bool or value is None:
            return value
        if t is list or t is dict or t is tuple:
            n = len(value)
            if n > _SMALL or not _flat(value, t):
                # A container takes a byte and an item at least a byte more: a
                # longer one is refused before any walk. Then the copy is charged,
                # a step per node and its bytes, before validation walks it (a
                # million-item list passed to try_call was validated per call for
                # a flat charge). A few scalars are covered by the caller's flat
                # charge (a call, an event, a return).
                if n >= self.max_value_bytes:
                    raise InvalidValue(f"value larger than {self.max_value_bytes} bytes")
                self.footprint(value, self.max_value_bytes, self.max_value_depth)
        elif t is str or t is bytes:
            n = len(value)
            if n >= 64:
                self.guards["step"](n >> 6)  # validating it scans it
        return _snapshot(
            value,
            max_bytes=self.max_value_bytes,
            max_depth=self.max_value_depth,
            max_int_bits=self.max_int_bits,
        )

    def check_args(self, spec: MethodSpec, args: Any) -> tuple[Any, ...]:
        ta = type(args)
        if ta is not list and ta is not tuple:
            raise BadArguments("arguments are a list")
        n = len(args)
        if n == 0 and spec.required == 0:
            return ()
        if n < spec.required or n > len(spec.params):
            raise BadArguments(
                f"{spec.name} takes {spec.required}..{len(spec.params)} arguments, got {n}"
            )
        # Arguments are mostly ints and ASCII strings, immutable: if they all are
        # (copy_value's checks, inlined), the checked arguments are `args` itself.
        int_limit = self.int_limit
        for value, types_ in zip(args, spec.types, strict=False):
            t = type(value)
            if types_ is not None and t not in types_:
                break
            if t is int:
                if not -int_limit < value < int_limit:
                    break
            elif t is str:
                if not value.isascii() or len(value) > self.max_value_bytes:
                    break
            elif t is not bool and value is not None:
                break
        else:
            return tuple(args)
        out = []
        for value, types_, pname in zip(args, spec.types, spec.params, strict=False):
            if types_ is not None and type(value) not in types_:
                want = " | ".join("None" if x is type(None) else x.__name__ for x in types_)
                raise BadArguments(
                    f"{spec.name}({pname}): expected {want}, got {type(value).__name__}"
                )
            out.append(self.copy_value(value))
        return tuple(out)

    # -- execution -------------------------------------------------------------------

    def begin(self, storage: StorageBackend, host: Host | None, steps: int) -> None:
        self.overlay = Overlay(storage, self.footprint)
        self.events = []
        self.frames = []
        self.host = host
        self.meter.reset(steps, self.limits.max_memory)

    def end(self) -> None:
        self.overlay = None  # type: ignore[assignment]
        self.events = self.frames = _IDLE  # type: ignore[assignment]
        self.frame = None  # type: ignore[assignment]
        self.host = None

    def load(self, name: Any) -> ContractInstance:
        id_key = self.id_keys.get(name) if type(name) is str else None
        if id_key is None:
            if not is_valid_contract_name(name):
                raise ContractNotFound(f"no contract named {str(name)[:80]!r}")
            id_key = code_id_key(name)
            if len(self.id_keys) > 4096:
                self.id_keys.clear()
            self.id_keys[name] = id_key
        raw_id = self.overlay.get_raw(id_key)
        if raw_id is None:
            raise ContractNotFound(f"no contract named {name!r}")
        inst = self.instances.get((name, raw_id))
        if inst is not None:
            return inst
        raw_src = self.overlay.get_raw(source_key(name))
        if raw_src is None:
            raise ContractNotFound(f"contract {name!r} has no source")
        compiled = _compile_cached(values.decode(raw_src), self.limits)
        return self.instance(name, compiled, raw_id)

    def run(
        self,
        inst: ContractInstance,
        spec: MethodSpec,
        args: tuple[Any, ...],
        frame: _Frame,
        read_only: bool,
    ) -> Any:
        """Run one entry point in a new frame; Python errors become typed errors."""
        meter = self.meter
        saved_frames, saved_ro = meter.frames, meter.read_only
        self.frames.append(frame)
        self.frame = frame
        if read_only:
            meter.read_only += 1
        try:
            return inst._functions[spec.name](inst, *args)
        except BaseException as e:
            err = translate(e)
            if isinstance(err, ContractError) and err.contract is None:
                err.contract = inst._name
            if err is e:
                raise
            raise err from e
        finally:
            meter.frames, meter.read_only = saved_frames, saved_ro
            self.frames.pop()
            self.frame = self.frames[-1] if self.frames else None  # type: ignore[assignment]

    def record_event(self, contract: str, name: Any, data: Any) -> None:
        if self.meter.read_only:
            raise ViewWriteError("cannot emit events in a read-only call")
        if type(name) is not str or not 0 < len(name) <= 64:
            raise InvalidValue("an event name is a str of 1 to 64 characters")
        data = self.copy_value(data)
        self.charge_write(b"", b"")  # an event lives in the result like a write
        self.events.append(Event(contract, name, data))

    # -- functions contracts call ----------------------------------------------------

    def emit(self, name: Any, data: Any = None) -> None:
        meter = self.meter
        if meter.read_only:
            raise ViewWriteError("cannot emit events in a read-only call")
        if type(name) is not str or not 0 < len(name) <= 64:
            raise InvalidValue("an event name is a str of 1 to 64 characters")
        if data is not None:
            data = self.copy_value(data)
        meter.steps -= WRITE_STEPS  # an event lives in the result like a write
        meter.memory -= 64
        if meter.steps < 0 or meter.memory < 0:
            self.budget_exceeded()
        self.events.append(Event(self.frame.contract, name, data))

    def emit_record(self, name: str, size: int, data: dict[str, Any]) -> None:
        """``emit(name, data)`` as the compiler writes it for a dict display with
        constant keys: the name and keys were checked at compile time (``size`` is
        what the keys add to :func:`values.snapshot`'s size sum) and ``data`` is a
        dict nobody else holds, so only the values are checked, and if they are all
        immutable (ASCII str, 64-bit int, bool, None) the dict itself is the event's.
        Anything else, or anything out of the ordinary, goes to :meth:`emit`."""
        meter = self.meter
        if not meter.read_only:
            for v in data.values():  # snapshot's flat-dict pass, on the values alone
                t = type(v)
                if t is str:
                    if not v.isascii():
                        break
                    size += len(v) + 5
                elif t is int:
                    if not -_U64 <= v < _U64:
                        break
                    size += 9
                elif t is not bool and v is not None:
                    break
                else:
                    size += 1
            else:
                if size <= self.max_value_bytes:
                    meter.steps -= WRITE_STEPS  # as in emit
                    meter.memory -= 64
                    if meter.steps < 0 or meter.memory < 0:
                        self.budget_exceeded()
                    self.events.append(Event(self.frame.contract, name, data))
                    return
        self.emit(name, data)

    def _nested(self, target: Any, method: Any, args: tuple[Any, ...], read_only: bool) -> Any:
        self.guards["step"](self.limits.call_steps)
        if len(self.frames) > self.limits.max_call_depth:
            raise RecursionLimitExceeded(
                f"more than {self.limits.max_call_depth} nested contract calls"
            )
        if type(method) is not str:
            raise MethodNotFound("a method name is a str")
        overlay = self.overlay
        checkpoint = overlay.checkpoint()
        n_events = len(self.events)
        try:
            inst = self.load(target)
            spec = _entry(inst, method)
            args = self.check_args(spec, args)
            caller = self.frame
            frame = _Frame(
                inst._name,
                caller.contract,
                caller.origin,
                caller.height,
                caller.time_ms,
                caller.tx_id,
            )
            result = self.run(inst, spec, args, frame, read_only or spec.is_view)
            return self.copy_value(result)
        except BaseException:
            overlay.rollback(checkpoint)
            del self.events[n_events:]
            raise

    def call(self, contract: Any, method: Any, *args: Any) -> Any:
        return self._nested(contract, method, args, read_only=False)

    def view_call(self, contract: Any, method: Any, *args: Any) -> Any:
        return self._nested(contract, method, args, read_only=True)

    def try_call(self, contract: Any, method: Any, *args: Any) -> list[Any]:
        saved_frames, saved_ro = self.meter.frames, self.meter.read_only
        try:
            return [True, self._nested(contract, method, args, read_only=False)]
        except REVERTIBLE as e:
            self.meter.frames, self.meter.read_only = saved_frames, saved_ro
            return [False, e.to_dict()]

    def host_call(self, function: Any, *args: Any) -> Any:
        self.guards["step"](self.limits.host_call_steps)
        if type(function) is not str:
            raise HostError("a host function name is a str")
        host = self.host
        if host is None:
            raise HostError(
                f"no host function {function[:80]!r}: this VM has no host",
                code=Code.VM_NO_HOST.value)
        copied = tuple(self.copy_value(list(args)))
        overlay = self.overlay
        checkpoint = overlay.checkpoint()
        n_events = len(self.events)
        request = HostRequest(self, function, copied, self.meter.read_only > 0)
        try:
            result = host(request)
        except (VMError, RecursionError):  # the latter: see _with_headroom
            overlay.rollback(checkpoint)
            del self.events[n_events:]
            raise
        except Exception as e:
            overlay.rollback(checkpoint)
            del self.events[n_events:]
            raise HostError(f"host function {function} failed: {type(e).__name__}") from e
        finally:
            request._open = False
        return self.copy_value(result)


def _entry(inst: ContractInstance, method: str) -> MethodSpec:
    spec = inst._compiled.methods.get(method)
    if spec is None or method == "init":
        raise MethodNotFound(f"contract {inst._name} has no method {method[:80]!r}")
    return spec


# --------------------------------------------------------------------------------------
# Compiled-code cache (pure, so shared by every VM in the process)
# --------------------------------------------------------------------------------------

_COMPILED: OrderedDict[tuple[bytes, Limits], CompiledContract] = OrderedDict()
_COMPILED_LOCK = threading.Lock()
_COMPILED_MAX = 256


def _compile_cached(source: Any, limits: Limits) -> CompiledContract:
    if type(source) is not str:
        raise ContractRejected("source must be a str")
    key = (code_id_of(source), limits)
    with _COMPILED_LOCK:
        hit = _COMPILED.get(key)
        if hit is not None:
            _COMPILED.move_to_end(key)
            return hit
    # The compiler recurses over the AST (at most max_ast_depth deep) and catches a
    # RecursionError as a rejection: it must have room whatever the host's stack.
    # Compiling is rare (the result is cached), so the room is checked up front.
    _ensure_room(_COMPILE_FRAMES_PER_LEVEL * limits.max_ast_depth + 200)
    compiled = compile_contract(source, limits)
    with _COMPILED_LOCK:
        _COMPILED[key] = compiled
        if len(_COMPILED) > _COMPILED_MAX:
            _COMPILED.popitem(last=False)
    return compiled


# --------------------------------------------------------------------------------------
# The VM
# --------------------------------------------------------------------------------------


def _check_context(ctx: Context) -> None:
    if not isinstance(ctx, Context):
        raise BadArguments("ctx must be a tally.vm.Context")
    if type(ctx.caller) is not str or type(ctx.height) is not int or type(ctx.time_ms) is not int:
        raise BadArguments("Context(caller: str, height: int, time_ms: int, tx_id: bytes)")
    if type(ctx.tx_id) is not bytes or (ctx.origin is not None and type(ctx.origin) is not str):
        raise BadArguments("Context(caller: str, height: int, time_ms: int, tx_id: bytes)")


def _entry_point(query: bool) -> Callable[..., ExecutionResult]:
    """:meth:`VM.call` (``query=False``) or :meth:`VM.query`: the per-call path,
    written out flat, as the method itself. It runs once per transaction, and every
    Python-level call here costs about as much as a storage read."""

    def once(
        self: VM,
        contract: str,
        method: str,
        args: list[Any] | tuple[Any, ...],
        storage: StorageBackend,
        ctx: Context,
        host: Host | None,
        steps: int | None,
    ) -> ExecutionResult:
        if (
            type(ctx) is not Context
            or type(ctx.caller) is not str
            or type(ctx.height) is not int
            or type(ctx.time_ms) is not int
            or type(ctx.tx_id) is not bytes
        ):
            _check_context(ctx)
        budget = self.limits.max_steps if steps is None else self._budget(steps)
        me = get_ident()
        if self._owner == me:
            raise VMBusy("this VM is already executing (a host hook re-entered it)")
        self._lock.acquire()
        self._owner = me
        rt = self._rt
        meter = rt.meter
        try:
            overlay = rt.overlay = Overlay(storage, rt.footprint)
            events: list[Event] = []
            rt.events = events
            rt.host = host
            # meter.reset(budget, max_memory), inlined
            meter.steps = meter.budget = budget
            meter.memory = self._max_memory
            meter.frames = meter.read_only = 0

            id_key = rt.id_keys.get(contract) if type(contract) is str else None
            inst = None
            if id_key is not None:
                # overlay.get_raw(id_key) on the fresh overlay, inlined
                raw_id = storage.get(id_key)
                if raw_id is not None and type(raw_id) is not bytes:
                    raw_id = bytes(raw_id)
                overlay.reads[id_key] = raw_id
                inst = rt.instances.get((contract, raw_id))
            if inst is None:
                inst = rt.load(contract)
            spec = inst._compiled.methods.get(method) if type(method) is str else None
            if spec is None or method == "init":
                raise MethodNotFound(f"contract {contract} has no method {str(method)[:80]!r}")
            read_only = spec.is_view
            if query and not read_only:
                raise MethodNotFound(f"{contract}.{method} is not a @view")

            checked = rt.check_args(spec, args)
            origin = ctx.origin if ctx.origin is not None else ctx.caller
            frame = _Frame(contract, ctx.caller, origin, ctx.height, ctx.time_ms, ctx.tx_id)
            rt.frames = [frame]
            rt.frame = frame
            if read_only:
                meter.read_only = 1
            try:
                result = inst._functions[method](inst, *checked)
            except BaseException as e:
                err = translate(e)
                if isinstance(err, ContractError) and err.contract is None:
                    err.contract = contract
                if err is e:
                    raise
                raise err from e
            if result is not None and type(result) is not bool:
                result = rt.copy_value(result)
            left = meter.steps
            return ExecutionResult(
                # overlay.write_set(), inlined: sorted by key (keys are distinct)
                dict(sorted(overlay.writes.items())),
                events,
                result,
                budget - left if left > 0 else budget,
            )
        except VMError as e:
            e.steps_used = min(meter.budget - meter.steps, meter.budget)
            raise
        finally:
            rt.overlay = None  # type: ignore[assignment]
            rt.events = rt.frames = _IDLE  # type: ignore[assignment]
            rt.frame = None  # type: ignore[assignment]
            rt.host = None
            self._owner = None
            self._lock.release()

    def entry(
        self: VM,
        contract: str,
        method: str,
        args: list[Any] | tuple[Any, ...] = (),
        *,
        storage: StorageBackend,
        ctx: Context,
        host: Host | None = None,
        steps: int | None = None,
    ) -> ExecutionResult:
        try:
            return once(self, contract, method, args, storage, ctx, host, steps)
        except (RecursionError, _HostRecursion):  # see _with_headroom
            pass
        return _rerun(
            self._need, lambda: once(self, contract, method, args, storage, ctx, host, steps)
        )

    entry.__name__ = "query" if query else "call"
    entry.__qualname__ = f"VM.{entry.__name__}"
    entry.__doc__ = (
        "Run a ``@view`` method read-only; the result's write set is always empty."
        if query
        else "Call ``contract.method(*args)``; a ``@view`` method runs read-only."
    )
    return entry


class VM:
    """A contract virtual machine.

    Create one per executor and reuse it: it caches each contract's loaded module
    and instance, which is what makes a call cheap. An instance runs one execution
    at a time (other threads wait); a host hook must not call back into the VM
    that called it (use ``call`` inside contracts for contract-to-contract calls).
    """

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self._max_memory = limits.max_memory
        self._need = _recursion_need(limits)
        self._rt = _Runtime(limits)
        self._lock = threading.Lock()
        self._owner: int | None = None

    # -- public API ------------------------------------------------------------------

    def compile(self, source: str) -> CompiledContract:
        """Check and compile ``source`` (cached by its SHA-256) and load it once, so
        every deploy-time error surfaces here as :class:`ContractRejected`."""
        compiled = _compile_cached(source, self.limits)
        return _with_headroom(self._need, lambda: self._load(compiled))

    def _load(self, compiled: CompiledContract) -> CompiledContract:
        self._acquire()
        try:
            self._rt.namespace(compiled)
        finally:
            self._release()
        return compiled

    def deploy(
        self,
        name: str,
        source: str,
        args: list[Any] | tuple[Any, ...] = (),
        *,
        storage: StorageBackend,
        ctx: Context,
        host: Host | None = None,
        steps: int | None = None,
    ) -> ExecutionResult:
        """Deploy ``source`` as contract ``name`` and run its ``init(*args)`` if any.

        The write set stores the code under ``c/<name>/!id`` and ``c/<name>/!src``.
        """
        return _with_headroom(
            self._need, lambda: self._deploy(name, source, args, storage, ctx, host, steps)
        )

    def _deploy(
        self,
        name: str,
        source: str,
        args: list[Any] | tuple[Any, ...],
        storage: StorageBackend,
        ctx: Context,
        host: Host | None,
        steps: int | None,
    ) -> ExecutionResult:
        if not is_valid_contract_name(name):
            raise BadArguments(f"invalid contract name {str(name)[:80]!r}")
        _check_context(ctx)
        compiled = self.compile(source)
        budget = self._budget(steps)
        self._acquire()
        try:
            rt = self._rt
            rt.begin(storage, host, budget)
            try:
                overlay = rt.overlay
                if overlay.get_raw(code_id_key(name)) is not None:
                    raise AlreadyDeployed(f"contract {name!r} already exists")
                raw_id = values.encode(compiled.code_id)
                overlay.put(code_id_key(name), raw_id)
                overlay.put(
                    source_key(name),
                    values.encode(source, max_bytes=4 * self.limits.max_source_bytes),
                )
                for key, raw in self._library_writes(compiled, overlay.get_raw).items():
                    overlay.put(key, raw)
                inst = rt.instance(name, compiled, raw_id)
                result = None
                if compiled.has_init:
                    spec = compiled.methods["init"]
                    result = self._run_top(inst, spec, args, ctx, read_only=False)
                elif args:
                    raise BadArguments(f"contract {name} has no init() to take arguments")
                return self._finish(result)
            except VMError as e:
                e.steps_used = min(rt.meter.budget - rt.meter.steps, rt.meter.budget)
                raise
            finally:
                rt.end()
        finally:
            self._release()

    def library_writes(self, source: str, storage: StorageBackend) -> dict[bytes, bytes]:
        """The texts of the library modules ``source`` imports that ``storage`` does not
        hold yet (key -> CBOR text): what a deploy writes, and what an executor that
        installs code another way (an upgrade) must write with it."""
        return self._library_writes(self.compile(source), storage.get)

    def _library_writes(
        self, compiled: CompiledContract, get: Callable[[bytes], bytes | None]
    ) -> dict[bytes, bytes]:
        writes = {}
        for module in sorted({m for m, _, _ in compiled.imports}):
            key = stdlib.library_key(module)
            if get(key) is None:
                text = stdlib.source(module)
                writes[key] = values.encode(text, max_bytes=4 * self.limits.max_source_bytes)
        return writes

    # call(contract, method, args=(), *, storage, ctx, host=None, steps=None) and
    # query(...): one body, built twice so that neither goes through a helper.
    call = _entry_point(query=False)
    query = _entry_point(query=True)

    # -- internals -------------------------------------------------------------------

    def _budget(self, steps: int | None) -> int:
        if steps is None:
            return self.limits.max_steps
        if type(steps) is not int or steps < 0:
            raise BadArguments("steps must be a non-negative int")
        return steps

    def _acquire(self) -> None:
        """One execution per VM at a time; re-entry from the same thread is a bug in
        the host and is refused rather than deadlocking."""
        me = threading.get_ident()
        if self._owner == me:
            raise VMBusy("this VM is already executing (a host hook re-entered it)")
        self._lock.acquire()
        self._owner = me

    def _release(self) -> None:
        self._owner = None
        self._lock.release()

    def _run_top(
        self, inst: ContractInstance, spec: MethodSpec, args: Any, ctx: Context, read_only: bool
    ) -> Any:
        rt = self._rt
        checked = rt.check_args(spec, args)
        origin = ctx.origin if ctx.origin is not None else ctx.caller
        frame = _Frame(inst._name, ctx.caller, origin, ctx.height, ctx.time_ms, ctx.tx_id)
        return rt.copy_value(rt.run(inst, spec, checked, frame, read_only))

    def _finish(self, result: Any) -> ExecutionResult:
        rt = self._rt
        meter = rt.meter
        return ExecutionResult(
            rt.overlay.write_set(), rt.events, result, meter.budget - max(meter.steps, 0)
        )


__all__ = [
    "VM",
    "Context",
    "Contract",
    "Event",
    "ExecutionResult",
    "Host",
    "HostRequest",
]
