"""Run-time guards: metering, allocation checks, and the attribute allow-list.

The rewriter (:mod:`tally.vm.compiler`) turns every operation whose cost or result
size depends on data into a call to one of the functions built here, and the
sandbox's builtins are the wrappers built here. Each guard charges for the work
*before* doing it, so a huge request fails without allocating anything.

Cost model (steps are the unit of the step budget, bytes of the memory budget):

* straight-line code: one step per AST node, charged on function entry and on
  each loop iteration for the worst case up to the next such point;
* copying or scanning ``n`` bytes of str/bytes: ``n // 64`` steps;
* element-wise work on ``n`` list/dict elements: ``n`` steps (``n // 16`` for a
  memmove such as ``insert``); comparisons of nested values: one step per node;
* every allocation whose size depends on data is charged to the memory budget,
  summed over the call (bytes allocated, not live), with sizes estimated as
  ``len`` for str/bytes, 8 per list slot, 48 per dict entry, 64 per materialised
  element.

Guards are closures over one :class:`Meter`, which the VM resets for each call, so
the hot path reads no globals and allocates nothing.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from functools import partial
from typing import Any

from .compiler import CTX_FIELDS
from .errors import Forbidden, MemoryLimitExceeded, OutOfSteps, RecursionLimitExceeded
from .limits import Limits


class Meter:
    """The budgets of the running call. One per VM; the VM resets it per call."""

    __slots__ = ("steps", "memory", "frames", "read_only", "budget")

    def __init__(self) -> None:
        self.steps = 0
        self.memory = 0
        self.frames = 0
        self.read_only = 0
        self.budget = 0

    def reset(self, steps: int, memory: int) -> None:
        self.steps = steps
        self.budget = steps
        self.memory = memory
        self.frames = 0
        self.read_only = 0

    def save(self) -> tuple[int, int, int, int, int]:
        return (self.steps, self.memory, self.frames, self.read_only, self.budget)

    def restore(self, state: tuple[int, int, int, int, int]) -> None:
        self.steps, self.memory, self.frames, self.read_only, self.budget = state


PLAIN = object()  # method table marker: return the bound method as is
_NoneType = type(None)
_SEQUENCES = (str, bytes, list, tuple)
_SIZED = (str, bytes, list, tuple, dict, range)
_CONTAINERS = (list, tuple, dict)
_CODECS = {"utf-8", "utf8", "ascii", "us-ascii"}
_CODEC_ERRORS = {"strict", "ignore", "replace"}
_FLOAT_PRESENTATION = set("eEfFgGn%")
_DIGITS = re.compile(r"\d+")
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def size_of(x: Any) -> int:
    """Estimated bytes of a value's own storage (not of the values it refers to)."""
    t = type(x)
    if t is str or t is bytes:
        return len(x)
    if t is list or t is tuple:
        return 8 * len(x)
    if t is dict:
        return 48 * len(x)
    return 0


class SafeType:
    """A builtin type as contracts see it: callable through a guard, usable in
    ``isinstance`` and storage declarations, with a few allow-listed class methods."""

    __slots__ = ("name", "pytype", "impl", "attrs")

    def __init__(
        self, name: str, pytype: type, impl: Callable[..., Any], attrs: dict[str, Any]
    ) -> None:
        self.name = name
        self.pytype = pytype
        self.impl = impl
        self.attrs = attrs

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.impl(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<type {self.name}>"


class ContractInstance:
    """``self`` in a contract: one deployed contract (name + code) bound to a VM.

    The VM makes one subclass per deployed contract whose class attributes are
    exactly the contract's members: map proxies, Var slots (data descriptors that
    read and write storage), methods and constants. Contract code reads
    ``self.<member>`` as a plain attribute (the compiler checked the name), so
    nothing else may be reachable: our own state lives in ``_`` slots, which
    contract code cannot name. (No ``__getattr__``: a class with one has every
    attribute read go through it, ``self.<member>`` included. The VM's handler for
    reads through ``_ga`` words a missing attribute; see :func:`instance_getattr`.)
    """

    __slots__ = ("_name", "_compiled", "_functions")

    def __init__(self, name: str, compiled: Any, functions: dict[str, Callable[..., Any]]) -> None:
        self._name = name
        self._compiled = compiled
        self._functions = functions


def instance_getattr(obj: ContractInstance, name: str) -> Any:
    """``_ga(x, name)`` for ``x`` a contract instance (``x = self; x.name``)."""
    try:
        return getattr(obj, name)
    except AttributeError:
        raise AttributeError(f"contract {obj._name} has no attribute {name!r}") from None


class ContextView:
    """The ``ctx`` object in contracts: reads the frame that is running now.

    Contract code reads ``ctx.<field>`` as a plain attribute (the compiler checked
    the name); each field is a property, and nothing else is public: a read
    through ``_ga`` (``c = ctx; c.name``) is answered by :func:`context_getattr`,
    which serves the fields only.
    """

    __slots__ = ("_rt",)

    def __init__(self, rt: Any) -> None:
        self._rt = rt

    caller = property(lambda self: self._rt.frame.caller)
    origin = property(lambda self: self._rt.frame.origin)
    contract = property(lambda self: self._rt.frame.contract)
    height = property(lambda self: self._rt.frame.height)
    time_ms = property(lambda self: self._rt.frame.time_ms)
    tx_id = property(lambda self: self._rt.frame.tx_id)


def context_getattr(obj: ContextView, name: str) -> Any:
    """``_ga(c, name)`` for ``c`` the ctx object: its fields, nothing else (once its
    class attributes were reachable this way, a frozenset among them)."""
    if name in CTX_FIELDS:
        return getattr(obj, name)
    raise Forbidden(f"ctx has no attribute {name!r}")


_NO_MEMBER = object()


def scrub(message: str) -> str:
    """Error text without object addresses, which differ between nodes."""
    return _ADDRESS.sub("", message)[:300]


def make_guards(m: Meter, limits: Limits) -> tuple[dict[str, Any], dict[str, Any], dict[type, Any]]:
    """Build the guard functions bound to meter ``m``.

    Returns ``(guards, builtins, attr_handlers)``: the ``_``-names the rewriter
    calls, the sandbox builtins, and the per-type attribute handlers (the VM adds
    handlers for its own runtime types).
    """
    max_bits = limits.max_int_bits
    int_lim = 1 << max_bits
    max_frames = limits.max_frames
    max_width = limits.max_format_width

    # -- budgets -------------------------------------------------------------------

    def out_of_steps() -> OutOfSteps:
        return OutOfSteps(f"step budget of {m.budget} exhausted")

    def step(n: int) -> None:
        m.steps -= n
        if m.steps < 0:
            raise out_of_steps()

    def tick(n: int) -> bool:
        m.steps -= n
        if m.steps < 0:
            raise out_of_steps()
        return True

    # A function entry charges its weight and counts a frame; its exit uncounts the
    # frame. The compiler writes both out on the meter `_m` in each function (and
    # read_only += 1 / -= 1 around a view's body) and calls `_entered` only when a
    # check fails; a lambda calls `_lamenter` and `_lamexit`.

    def entered() -> None:
        """Raise the error of a function entry whose check failed."""
        if m.steps < 0:
            raise out_of_steps()
        raise RecursionLimitExceeded(f"more than {max_frames} nested contract frames")

    def lambda_enter(n: int) -> None:
        m.steps -= n
        m.frames += 1
        if m.steps < 0 or m.frames > max_frames:
            entered()

    def lambda_exit(_: None, value: Any) -> Any:
        m.frames -= 1
        return value

    def alloc(nbytes: int) -> None:
        m.memory -= nbytes
        if m.memory < 0:
            raise MemoryLimitExceeded(f"memory budget of {limits.max_memory} bytes exhausted")
        if nbytes >= 64:
            step(nbytes >> 6)

    def check_int(r: Any) -> Any:
        if type(r) is int and not -int_lim < r < int_lim:
            raise MemoryLimitExceeded(f"integer larger than {max_bits} bits")
        return r

    def deep(x: Any) -> int:
        """Nodes in a nested value, counted without recursion and cut off once the
        count passes the steps left: the caller is about to charge it anyway."""
        limit = m.steps + 1
        count = 0
        stack = [x]
        while stack:
            v = stack.pop()
            t = type(v)
            count += 1
            if t is list or t is tuple:
                count += len(v)
                stack.extend(c for c in v if type(c) in _CONTAINERS)
            elif t is dict:
                count += len(v)
                stack.extend(c for c in v.values() if type(c) in _CONTAINERS)
            elif t is str or t is bytes:
                count += len(v) >> 6
            if count > limit:
                break
        return count

    def materialize(it: Any) -> list[Any]:
        """A list of ``it``'s items, charged per item: the only way a lazy iterable
        reaches a builtin that would otherwise loop over it in C, unmetered."""
        t = type(it)
        if t in _SIZED:
            n = len(it)
            alloc(8 * n)
            step(n >> 3)
            return list(it)
        out: list[Any] = []
        append = out.append
        for item in it:
            m.steps -= 1
            m.memory -= 64
            if m.steps < 0:
                raise out_of_steps()
            if m.memory < 0:
                raise MemoryLimitExceeded(f"memory budget of {limits.max_memory} bytes exhausted")
            append(item)
        return out

    def sized(it: Any) -> Any:
        """``it`` itself if it has a length (charged for a copy), else a list of it."""
        if type(it) in _SIZED:
            n = len(it)
            alloc(8 * n)
            step(n >> 3)
            return it
        return materialize(it)

    def walkable(it: Any) -> Any:
        """``it`` for a builtin that only walks it once (no copy): charged per item."""
        if type(it) in _SIZED:
            step(len(it))
            return it
        return materialize(it)

    def spread(x: Any) -> Any:
        if type(x) is dict:
            alloc(size_of(x))
            return x
        return sized(x)

    # -- operators -------------------------------------------------------------------

    def add(a: Any, b: Any) -> Any:
        ta = type(a)
        if ta is int and type(b) is int:
            r = a + b
            if -int_lim < r < int_lim:
                return r
            raise MemoryLimitExceeded(f"integer larger than {max_bits} bits")
        if ta is type(b) and ta in _SEQUENCES:
            alloc(size_of(a) + size_of(b))
            return a + b
        return check_int(a + b)

    def iadd(a: Any, b: Any) -> Any:
        if type(a) is list:
            b = sized(b)
            alloc(8 * len(b))
            a += b
            return a
        return add(a, b)

    def repeat_count(a: Any, b: Any) -> tuple[Any, int] | None:
        ta, tb = type(a), type(b)
        if ta in _SEQUENCES and (tb is int or tb is bool):
            return a, int(b)
        if tb in _SEQUENCES and (ta is int or ta is bool):
            return b, int(a)
        return None

    def mul(a: Any, b: Any) -> Any:
        if type(a) is int and type(b) is int:
            bits_a, bits_b = a.bit_length(), b.bit_length()
            if bits_a + bits_b - 1 > max_bits:
                raise MemoryLimitExceeded(f"integer larger than {max_bits} bits")
            if bits_a > 512 and bits_b > 512:
                step((bits_a * bits_b) >> 16)  # schoolbook-ish cost of big products
            return check_int(a * b)
        rep = repeat_count(a, b)
        if rep is not None:
            seq, n = rep
            if n > 0:
                alloc(size_of(seq) * n)
            return a * b
        return check_int(a * b)

    def imul(a: Any, b: Any) -> Any:
        if type(a) is list and (type(b) is int or type(b) is bool):
            if b > 1:
                alloc(size_of(a) * (b - 1))
            a *= b
            return a
        return mul(a, b)

    def pow_(a: Any, b: Any, mod: Any = None) -> Any:
        ta, tb = type(a), type(b)
        if mod is not None:
            for x in (a, b, mod):
                if type(x) is not int:
                    raise TypeError("pow() with a modulus takes integers")
                check_int(x)
            step(b.bit_length() + 1)
            return pow(a, b, mod)
        if (ta is int or ta is bool) and (tb is int or tb is bool):
            if b < 0:
                raise Forbidden("a negative exponent would make a float; use integers")
            if b <= 1 or a in (0, 1, -1):
                return a**b
            lower = (abs(a).bit_length() - 1) * b + 1
            if lower > max_bits:
                raise MemoryLimitExceeded(f"integer larger than {max_bits} bits")
            return check_int(a**b)
        return a**b

    def lshift(a: Any, b: Any) -> Any:
        ints = (type(a) is int or type(a) is bool) and (type(b) is int or type(b) is bool)
        if ints and b > 0 and a and a.bit_length() + b > max_bits:
            raise MemoryLimitExceeded(f"integer larger than {max_bits} bits")
        return a << b

    def mod(a: Any, b: Any) -> Any:
        if type(a) is str or type(a) is bytes:
            raise Forbidden("%-formatting is not available; use f-strings")
        return a % b

    def or_(a: Any, b: Any) -> Any:
        if type(a) is dict and type(b) is dict:
            alloc(size_of(a) + size_of(b))
        return a | b

    def ior(a: Any, b: Any) -> Any:
        if type(a) is dict:
            b = b if type(b) is dict else materialize(b)
            alloc(48 * len(b))
            a |= b
            return a
        return or_(a, b)

    # -- comparisons -----------------------------------------------------------------

    def compare_cost(a: Any, b: Any) -> None:
        ta = type(a)
        if ta is str or ta is bytes:
            if type(b) is ta:
                n = min(len(a), len(b))
                if n >= 64:
                    step(n >> 6)
        elif ta in _CONTAINERS and type(b) in _CONTAINERS:
            step(min(deep(a), deep(b)))

    def eq(a: Any, b: Any) -> bool:
        if type(a) is int or type(b) is int:
            return a == b
        compare_cost(a, b)
        return a == b

    def ne(a: Any, b: Any) -> bool:
        if type(a) is int or type(b) is int:
            return a != b
        compare_cost(a, b)
        return a != b

    def lt(a: Any, b: Any) -> bool:
        if type(a) is int and type(b) is int:
            return a < b
        compare_cost(a, b)
        return a < b

    def le(a: Any, b: Any) -> bool:
        if type(a) is int and type(b) is int:
            return a <= b
        compare_cost(a, b)
        return a <= b

    def gt(a: Any, b: Any) -> bool:
        if type(a) is int and type(b) is int:
            return a > b
        compare_cost(a, b)
        return a > b

    def ge(a: Any, b: Any) -> bool:
        if type(a) is int and type(b) is int:
            return a >= b
        compare_cost(a, b)
        return a >= b

    in_handlers: dict[type, Callable[[Any, Any], bool]] = {}

    def contains(a: Any, b: Any) -> bool:
        tb = type(b)
        if tb is dict:
            if type(a) is str and len(a) >= 64:
                step(len(a) >> 6)
            return a in b
        if tb is str or tb is bytes:
            if type(a) is tb:
                step((len(a) + len(b)) >> 6)
            return a in b
        if tb is list or tb is tuple:
            ta = type(a)
            if ta in _CONTAINERS:
                step(deep(b))
            elif ta is str or ta is bytes:
                step(len(b) * (1 + (len(a) >> 6)))
            else:
                step(len(b))
            return a in b
        if tb is range:
            if type(a) is int or type(a) is bool:
                return int(a) in b
            return False
        handler = in_handlers.get(tb)
        if handler is not None:
            return handler(b, a)
        raise Forbidden(f"'in' is not available on {tb.__name__}; make a list first")

    def not_contains(a: Any, b: Any) -> bool:
        return not contains(a, b)

    # -- subscripts ------------------------------------------------------------------

    def getslice(obj: Any, lo: Any, hi: Any, st: Any) -> Any:
        t = type(obj)
        if t in _SEQUENCES:
            n = len(range(len(obj))[lo:hi:st])
            alloc(n if t is str or t is bytes else 8 * n)
        return obj[lo:hi:st]

    def setslice(obj: Any, lo: Any, hi: Any, st: Any, value: Any) -> None:
        if type(obj) is list:
            value = sized(value)
            alloc(8 * len(value))
            step(len(obj) >> 4)
        obj[lo:hi:st] = value

    def delslice(obj: Any, lo: Any, hi: Any, st: Any) -> None:
        if type(obj) is list:
            step(len(obj) >> 4)
        del obj[lo:hi:st]

    def delitem(obj: Any, key: Any) -> None:
        if type(obj) is list:
            step(len(obj) >> 4)
        del obj[key]

    # -- formatting ------------------------------------------------------------------

    def check_formattable(value: Any) -> None:
        t = type(value)
        if t in _CONTAINERS:
            step(deep(value))
            stack = [value]
            while stack:
                v = stack.pop()
                tv = type(v)
                if tv is list or tv is tuple:
                    stack.extend(v)
                elif tv is dict:
                    stack.extend(v.keys())
                    stack.extend(v.values())
                elif tv not in (int, str, bytes, bool, _NoneType):
                    raise Forbidden(f"cannot format a {tv.__name__}")
        elif t not in (int, str, bytes, bool, _NoneType):
            raise Forbidden(f"cannot format a {t.__name__}")

    def fmt(value: Any, conversion: int, spec: str) -> str:
        check_formattable(value)
        if type(value) is int:
            bits = value.bit_length()
            if bits > 512:
                step((bits * bits) >> 16)  # int -> decimal text is quadratic
        if conversion == 114:
            value = repr(value)
        elif conversion == 97:
            value = ascii(value)
        elif conversion == 115 or type(value) in _CONTAINERS:
            value = str(value)
        if spec:
            if spec[-1] in _FLOAT_PRESENTATION:
                raise Forbidden(f"format type {spec[-1]!r} is not available (no floats, no locale)")
            for digits in _DIGITS.findall(spec):
                if len(digits) > 6 or int(digits) > max_width:
                    raise MemoryLimitExceeded(f"format width or precision above {max_width}")
        result = format(value, spec)
        alloc(len(result))
        return result

    # -- builtins --------------------------------------------------------------------

    def check_codec(encoding: Any, errors: Any) -> None:
        if type(encoding) is not str or encoding.lower().replace("_", "-") not in _CODECS:
            raise Forbidden("only UTF-8 and ASCII encodings are available")
        if type(errors) is not str or errors not in _CODEC_ERRORS:
            raise Forbidden("errors= must be 'strict', 'ignore' or 'replace'")

    def b_str(value: Any = "", encoding: Any = None, errors: Any = None) -> str:
        if encoding is not None or errors is not None:
            if type(value) is not bytes:
                raise TypeError("decoding str() takes bytes")
            check_codec(encoding or "utf-8", errors or "strict")
            alloc(len(value) * 4)
            return value.decode(encoding or "utf-8", errors or "strict")
        if type(value) is str:
            return value
        return fmt(value, 115, "")

    def b_int(value: Any = 0, base: Any = None) -> int:
        t = type(value)
        if t is str or t is bytes:
            n = len(value)
            step((n >> 6) + ((n * n) >> 12 if n > 300 else 0))  # decimal -> int is quadratic
        r = int(value) if base is None else int(value, base)
        return check_int(r)

    def b_bytes(value: Any = b"", encoding: Any = None, errors: Any = None) -> bytes:
        t = type(value)
        if encoding is not None or errors is not None:
            if t is not str:
                raise TypeError("encoding bytes() takes a str")
            check_codec(encoding or "utf-8", errors or "strict")
            alloc(len(value) * 4)
            return value.encode(encoding or "utf-8", errors or "strict")
        if t is int or t is bool:
            if value > 0:
                alloc(value)
            return bytes(value)
        if t is bytes:
            return value
        if t is str:
            raise TypeError("bytes() of a str needs an encoding")
        return bytes(sized(value))

    def b_list(value: Any = ()) -> list[Any]:
        if type(value) in _SIZED:
            return list(sized(value))
        return materialize(value)

    def b_dict(value: Any = None, **kwargs: Any) -> dict[Any, Any]:
        alloc(48 * len(kwargs))
        if value is None:
            return dict(**kwargs)
        if type(value) is dict:
            alloc(size_of(value))
            return dict(value, **kwargs)
        items = sized(value)
        alloc(48 * len(items))
        return dict(items, **kwargs)

    def sort_cost(items: list[Any]) -> None:
        n = len(items)
        if n < 2:
            return
        step(n)  # pays for the scan below before it runs
        per = deep(items) if any(type(x) in _CONTAINERS for x in items) else n
        step(per * n.bit_length())

    def b_sorted(iterable: Any, *, key: Any = None, reverse: Any = False) -> list[Any]:
        items = list(sized(iterable))
        sort_cost(items)
        items.sort(key=key, reverse=bool(reverse))
        return items

    def b_sum(iterable: Any, start: Any = 0) -> int:
        if type(start) is not int:
            raise Forbidden("sum() adds integers; use str.join or + for sequences")
        return check_int(sum(walkable(iterable), start))

    _NO_DEFAULT = object()

    def min_max(fn: Callable[..., Any], args: tuple[Any, ...], key: Any, default: Any) -> Any:
        items = walkable(args[0]) if len(args) == 1 else args
        if any(type(x) in _CONTAINERS for x in items):
            step(deep(list(items)))
        if default is _NO_DEFAULT:
            return fn(items, key=key)
        return fn(items, key=key, default=default)

    def b_min(*args: Any, key: Any = None, default: Any = _NO_DEFAULT) -> Any:
        return min_max(min, args, key, default)

    def b_max(*args: Any, key: Any = None, default: Any = _NO_DEFAULT) -> Any:
        return min_max(max, args, key, default)

    def b_any(iterable: Any) -> bool:
        if type(iterable) in _SIZED:
            step(len(iterable))
            return any(iterable)
        for item in iterable:
            step(1)
            if item:
                return True
        return False

    def b_all(iterable: Any) -> bool:
        if type(iterable) in _SIZED:
            step(len(iterable))
            return all(iterable)
        for item in iterable:
            step(1)
            if not item:
                return False
        return True

    def b_enumerate(iterable: Any, start: Any = 0) -> Any:
        if type(start) is not int:
            raise TypeError("enumerate() start must be an int")
        return map(list, enumerate(iterable, start))

    def b_zip(*iterables: Any, strict: Any = False) -> Any:
        return map(list, zip(*iterables, strict=bool(strict)))

    type_of: dict[Any, type] = {}

    def b_isinstance(value: Any, types: Any) -> bool:
        if type(types) in (list, tuple):
            return any(b_isinstance(value, t) for t in types)
        pytype = type_of.get(types)
        if pytype is None:
            raise TypeError(
                "isinstance() takes int, str, bytes, bool, list, dict or a list of them"
            )
        if pytype is int and type(value) is bool:
            return False  # storage keeps them apart, so contracts do too
        return isinstance(value, pytype)

    def from_bytes(data: Any, byteorder: Any = "big", *, signed: Any = False) -> int:
        data = sized(data)
        if len(data) * 8 > max_bits:
            raise MemoryLimitExceeded(f"integer larger than {max_bits} bits")
        return int.from_bytes(data, byteorder, signed=bool(signed))

    def fromhex(text: Any) -> bytes:
        if type(text) is str:
            alloc(len(text) // 2)
        return bytes.fromhex(text)

    def fromkeys(iterable: Any, value: Any = None) -> dict[Any, Any]:
        items = sized(iterable)
        alloc(48 * len(items))
        return dict.fromkeys(items, value)

    s_int = SafeType("int", int, b_int, {"from_bytes": from_bytes})
    s_str = SafeType("str", str, b_str, {})
    s_bytes = SafeType("bytes", bytes, b_bytes, {"fromhex": fromhex})
    s_list = SafeType("list", list, b_list, {})
    s_dict = SafeType("dict", dict, b_dict, {"fromkeys": fromkeys})
    for s in (s_int, s_str, s_bytes, s_list, s_dict):
        type_of[s] = s.pytype
    type_of[bool] = bool
    type_of[range] = range

    builtins: dict[str, Any] = {
        "abs": abs, "all": b_all, "any": b_any, "bin": bin, "bool": bool, "bytes": s_bytes,
        "chr": chr, "dict": s_dict, "divmod": divmod, "enumerate": b_enumerate, "hex": hex,
        "int": s_int, "isinstance": b_isinstance, "len": len, "list": s_list, "max": b_max,
        "min": b_min, "oct": oct, "ord": ord, "pow": pow_, "range": range,
        "reversed": reversed, "sorted": b_sorted, "str": s_str, "sum": b_sum, "zip": b_zip,
    }  # fmt: skip

    # -- methods of builtin types ----------------------------------------------------

    def scan(name: str) -> Callable[..., Any]:
        def method(obj: Any, *args: Any, **kwargs: Any) -> Any:
            step((len(obj) >> 6) + sum(len(a) >> 6 for a in args if type(a) in (str, bytes)))
            return getattr(obj, name)(*args, **kwargs)

        return method

    def copy(name: str, factor: int) -> Callable[..., Any]:
        def method(obj: Any, *args: Any, **kwargs: Any) -> Any:
            alloc(len(obj) * factor)
            return getattr(obj, name)(*args, **kwargs)

        return method

    def split(name: str) -> Callable[..., Any]:
        def method(obj: Any, sep: Any = None, maxsplit: Any = -1) -> Any:
            step(len(obj) >> 6)
            pieces = obj.count(sep) + 1 if type(sep) is type(obj) and sep else len(obj) // 2 + 1
            if type(maxsplit) is int and maxsplit >= 0:
                pieces = min(pieces, maxsplit + 1)
            alloc(len(obj) + 64 * pieces)
            return getattr(obj, name)(sep, maxsplit)

        return method

    def splitlines(obj: Any, keepends: Any = False) -> Any:
        alloc(len(obj) + 64 * (len(obj) + 1))
        return obj.splitlines(keepends)

    def replace(obj: Any, old: Any, new: Any, count: Any = -1) -> Any:
        if type(old) is type(obj) and type(new) is type(obj):
            n = obj.count(old) if old else len(obj) + 1
            step(len(obj) >> 6)
            if type(count) is int and count >= 0:
                n = min(n, count)
            alloc(max(len(obj) + n * (len(new) - len(old)), 0))
        return obj.replace(old, new, count)

    def join(obj: Any, iterable: Any) -> Any:
        items = sized(iterable)
        step(len(items))  # the length sum below is a Python-level loop
        total = sum(len(x) for x in items if type(x) is type(obj)) + len(obj) * max(
            len(items) - 1, 0
        )
        alloc(total)
        return obj.join(items)

    def pad(name: str) -> Callable[..., Any]:
        def method(obj: Any, width: Any, *args: Any) -> Any:
            if type(width) is int and width > len(obj):
                alloc(width)
            return getattr(obj, name)(width, *args)

        return method

    def expandtabs(obj: Any, tabsize: Any = 8) -> Any:
        if type(tabsize) is int and tabsize > 0:
            alloc(len(obj) + obj.count("\t" if type(obj) is str else b"\t") * tabsize)
        return obj.expandtabs(tabsize)

    def encode(obj: Any, encoding: Any = "utf-8", errors: Any = "strict") -> bytes:
        check_codec(encoding, errors)
        alloc(len(obj) * 4)
        return obj.encode(encoding, errors)

    def decode(obj: Any, encoding: Any = "utf-8", errors: Any = "strict") -> str:
        check_codec(encoding, errors)
        alloc(len(obj) * 4)
        return obj.decode(encoding, errors)

    def hex_(obj: Any, *args: Any) -> str:
        alloc(len(obj) * 3)
        return obj.hex(*args)

    def to_bytes(
        obj: Any, length: Any = 1, byteorder: Any = "big", *, signed: Any = False
    ) -> bytes:
        if type(length) is int and length > 0:
            alloc(length)
        return obj.to_bytes(length, byteorder, signed=bool(signed))

    def partition(name: str) -> Callable[..., Any]:
        def method(obj: Any, sep: Any) -> Any:
            alloc(len(obj) + 3 * 64)
            return getattr(obj, name)(sep)

        return method

    text_methods: dict[str, Any] = {}
    for name in (
        "count", "endswith", "find", "index", "isalnum", "isalpha", "isascii", "isdigit",
        "islower", "isspace", "istitle", "isupper", "rfind", "rindex", "startswith",
    ):  # fmt: skip
        text_methods[name] = scan(name)
    for name in ("strip", "lstrip", "rstrip", "removeprefix", "removesuffix"):
        text_methods[name] = copy(name, 1)
    for name in ("lower", "upper", "capitalize", "title", "swapcase"):
        text_methods[name] = copy(name, 3)
    for name in ("split", "rsplit"):
        text_methods[name] = split(name)
    for name in ("ljust", "rjust", "center", "zfill"):
        text_methods[name] = pad(name)
    for name in ("partition", "rpartition"):
        text_methods[name] = partition(name)
    text_methods.update(splitlines=splitlines, replace=replace, join=join, expandtabs=expandtabs)
    str_methods = dict(text_methods, encode=encode, casefold=copy("casefold", 3))
    for name in ("isdecimal", "isidentifier", "isnumeric", "isprintable"):
        str_methods[name] = scan(name)
    bytes_methods = dict(text_methods, decode=decode, hex=hex_)
    int_methods = {"bit_length": PLAIN, "bit_count": PLAIN, "to_bytes": to_bytes}

    def seq_search(name: str) -> Callable[..., Any]:
        def method(obj: Any, value: Any, *args: Any) -> Any:
            contains(value, obj)  # charges as `in` would
            return getattr(obj, name)(value, *args)

        return method

    def list_copy(obj: list[Any]) -> list[Any]:
        alloc(size_of(obj))
        return obj.copy()

    def list_extend(obj: list[Any], iterable: Any) -> None:
        items = sized(iterable)
        alloc(8 * len(items))
        obj.extend(items)

    def memmove(name: str) -> Callable[..., Any]:
        def method(obj: list[Any], *args: Any) -> Any:
            step(len(obj) >> 4)
            return getattr(obj, name)(*args)

        return method

    def list_sort(obj: list[Any], *, key: Any = None, reverse: Any = False) -> None:
        sort_cost(obj)
        obj.sort(key=key, reverse=bool(reverse))

    list_methods = {
        "append": PLAIN, "clear": PLAIN, "copy": list_copy, "count": seq_search("count"),
        "extend": list_extend, "index": seq_search("index"), "insert": memmove("insert"),
        "pop": memmove("pop"), "remove": seq_search("remove"), "reverse": memmove("reverse"),
        "sort": list_sort,
    }  # fmt: skip

    def dict_copy(obj: dict[Any, Any]) -> dict[Any, Any]:
        alloc(size_of(obj))
        return obj.copy()

    def dict_keys(obj: dict[Any, Any]) -> list[Any]:
        alloc(8 * len(obj))
        return list(obj)

    def dict_values(obj: dict[Any, Any]) -> list[Any]:
        alloc(8 * len(obj))
        return list(obj.values())

    def dict_items(obj: dict[Any, Any]) -> list[list[Any]]:
        alloc(72 * len(obj))
        step(len(obj))
        return [[k, v] for k, v in obj.items()]

    def dict_popitem(obj: dict[Any, Any]) -> list[Any]:
        return list(obj.popitem())

    def dict_update(obj: dict[Any, Any], other: Any = (), **kwargs: Any) -> None:
        items = other if type(other) is dict else sized(other)
        alloc(48 * (len(items) + len(kwargs)))
        obj.update(items, **kwargs)

    dict_methods = {
        "clear": PLAIN, "get": PLAIN, "pop": PLAIN, "setdefault": PLAIN, "copy": dict_copy,
        "items": dict_items, "keys": dict_keys, "values": dict_values,
        "popitem": dict_popitem, "update": dict_update,
    }  # fmt: skip
    tuple_methods = {"count": seq_search("count"), "index": seq_search("index")}

    def range_count(obj: range, value: Any) -> int:
        return obj.count(value) if type(value) is int else 0

    def range_index(obj: range, value: Any, *args: Any) -> int:
        if type(value) is not int:
            raise ValueError("value is not in range")
        return obj.index(value, *args)

    range_methods = {
        "start": PLAIN,
        "stop": PLAIN,
        "step": PLAIN,
        "count": range_count,
        "index": range_index,
    }

    def table_handler(table: dict[str, Any]) -> Callable[[Any, str], Any]:
        def handler(obj: Any, name: str) -> Any:
            entry = table.get(name)
            if entry is None:
                raise Forbidden(f"attribute {name!r} of {type(obj).__name__} is not available")
            if entry is PLAIN:
                return getattr(obj, name)
            return partial(entry, obj)

        return handler

    def safe_type_attr(obj: SafeType, name: str) -> Any:
        entry = obj.attrs.get(name)
        if entry is None:
            raise Forbidden(f"attribute {name!r} of {obj.name} is not available")
        return entry

    attr_handlers: dict[type, Any] = {
        str: table_handler(str_methods),
        bytes: table_handler(bytes_methods),
        int: table_handler(int_methods),
        bool: table_handler(int_methods),
        list: table_handler(list_methods),
        dict: table_handler(dict_methods),
        tuple: table_handler(tuple_methods),
        range: table_handler(range_methods),
        SafeType: safe_type_attr,
        ContextView: context_getattr,
    }

    def getattr_guard(obj: Any, name: str) -> Any:
        t = type(obj)
        handler = attr_handlers.get(t)
        if handler is None:
            raise Forbidden(f"attribute {name!r} of {type(obj).__name__} is not available")
        return handler(obj, name)

    setattr_handlers: dict[type, Any] = {}

    def setattr_guard(obj: Any, name: str, value: Any) -> None:
        handler = setattr_handlers.get(type(obj))
        if handler is None:
            raise Forbidden(f"cannot set attributes of {type(obj).__name__}")
        handler(obj, name, value)

    ops: dict[str, Callable[[Any, Any], Any]] = {
        "+": iadd, "-": operator.isub, "*": imul, "//": operator.ifloordiv, "%": mod,
        "**": pow_, "<<": lshift, ">>": operator.irshift, "|": ior, "^": operator.ixor,
        "&": operator.iand,
    }  # fmt: skip

    def augattr(obj: Any, name: str, op: str, value: Any) -> None:
        setattr_guard(obj, name, ops[op](getattr_guard(obj, name), value))

    def augitem(obj: Any, key: Any, op: str, value: Any) -> None:
        current = obj[key]
        if op == "+" and type(current) is int and type(value) is int:
            result = current + value  # `balances[to] += amount`, the common case
            if not -int_lim < result < int_lim:
                raise MemoryLimitExceeded(f"integer larger than {max_bits} bits")
            obj[key] = result
        else:
            obj[key] = ops[op](current, value)

    guards: dict[str, Any] = {
        "_m": m, "_entered": entered, "_lamenter": lambda_enter, "_lamexit": lambda_exit,
        "_s": step, "_tick": tick,
        "_ga": getattr_guard, "_sa": setattr_guard, "_augattr": augattr, "_augitem": augitem,
        "_getslice": getslice, "_setslice": setslice, "_delslice": delslice,
        "_delitem": delitem, "_spread": spread, "_fmt": fmt,
        "_add": add, "_iadd": iadd, "_mul": mul, "_imul": imul, "_pow": pow_, "_lsh": lshift,
        "_mod": mod, "_or": or_, "_ior": ior,
        "_eq": eq, "_ne": ne, "_lt": lt, "_le": le, "_gt": gt, "_ge": ge,
        "_in": contains, "_nin": not_contains,
        # not called by contract code; the VM uses them
        "alloc": alloc, "step": step, "type_of": type_of, "in_handlers": in_handlers,
        "setattr_handlers": setattr_handlers, "check_int": check_int,
    }  # fmt: skip
    return guards, builtins, attr_handlers
