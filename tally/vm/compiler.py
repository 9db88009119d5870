"""Deploy-time checking and instrumentation of contract source.

The pipeline is: size and character checks → ``ast.parse`` → an allow-list
validator (every node type, name and attribute is checked against what contracts
may use) → a rewriter that inserts metering and routes every operation whose cost
or result depends on data through a runtime guard → ``compile``.

Why an allow-list of our own rather than RestrictedPython's transformer is
recorded in docs/decisions/0501-contract-language.md. In short: the validator
accepts only node types it knows, so a construct added by a future Python version
is rejected until someone decides about it; and the metering rewrite must touch
the same nodes anyway.

All names the rewriter injects start with ``_``, which contract code can never
write, so a contract can neither call nor shadow them.
"""

from __future__ import annotations

import ast
import hashlib
import io
import re
import tokenize
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from types import CodeType
from typing import Any

from . import stdlib
from .errors import ContractRejected
from .limits import DEFAULT_LIMITS, Limits

#: Names the runtime puts in every contract's namespace.
RUNTIME_NAMES = frozenset(
    {
        "Contract",
        "Map",
        "Var",
        "view",
        "ctx",
        "emit",
        "require",
        "ContractError",
        "call",
        "view_call",
        "try_call",
        "host_call",
    }
)

#: The message of ``require(test)`` without one.
REQUIRE_MESSAGE = "requirement failed"

#: Attributes of ``ctx``.
CTX_FIELDS = frozenset({"caller", "origin", "contract", "height", "time_ms", "tx_id"})

#: Builtins a contract may use (each a guarded wrapper where its cost depends on data).
BUILTIN_NAMES = frozenset(
    {
        "abs", "all", "any", "bin", "bool", "bytes", "chr", "dict", "divmod",
        "enumerate", "hex", "int", "isinstance", "len", "list", "max", "min",
        "oct", "ord", "pow", "range", "reversed", "sorted", "str", "sum", "zip",
    }
)  # fmt: skip

#: Types allowed in annotations of entry points and in ``Map``/``Var`` declarations.
TYPE_NAMES = {"int": int, "str": str, "bytes": bytes, "bool": bool, "list": list, "dict": dict}

_WHY_DYNAMIC = "dynamic code is not allowed"
_WHY_IO = "contracts have no I/O"
_WHY_INTROSPECTION = "introspection is not allowed"
#: Names that do not exist in a contract, with the reason given to the author.
FORBIDDEN_NAMES = {
    "exec": _WHY_DYNAMIC, "eval": _WHY_DYNAMIC, "compile": _WHY_DYNAMIC,
    "open": _WHY_IO, "input": _WHY_IO, "print": _WHY_IO, "breakpoint": _WHY_IO,
    "help": _WHY_IO, "exit": _WHY_IO, "quit": _WHY_IO, "license": _WHY_IO,
    "credits": _WHY_IO, "copyright": _WHY_IO,
    "getattr": _WHY_INTROSPECTION, "setattr": _WHY_INTROSPECTION,
    "delattr": _WHY_INTROSPECTION, "hasattr": _WHY_INTROSPECTION,
    "vars": _WHY_INTROSPECTION, "dir": _WHY_INTROSPECTION,
    "globals": _WHY_INTROSPECTION, "locals": _WHY_INTROSPECTION,
    "type": _WHY_INTROSPECTION, "object": _WHY_INTROSPECTION,
    "super": _WHY_INTROSPECTION, "id": _WHY_INTROSPECTION, "hash": _WHY_INTROSPECTION,
    "issubclass": _WHY_INTROSPECTION, "callable": _WHY_INTROSPECTION,
    "classmethod": _WHY_INTROSPECTION, "staticmethod": _WHY_INTROSPECTION,
    "property": _WHY_INTROSPECTION, "memoryview": _WHY_INTROSPECTION,
    "bytearray": _WHY_INTROSPECTION, "iter": _WHY_INTROSPECTION,
    "next": _WHY_INTROSPECTION, "aiter": _WHY_INTROSPECTION, "anext": _WHY_INTROSPECTION,
    "format": "use f-strings", "repr": "use str()", "ascii": "use str()",
    "float": "floats are not deterministic across platforms; use integers",
    "complex": "floats are not deterministic across platforms; use integers",
    "round": "floats are not deterministic across platforms; use integers",
    "set": "set iteration order depends on the hash seed; use dict or list",
    "frozenset": "set iteration order depends on the hash seed; use dict or list",
    "map": "use a comprehension", "filter": "use a comprehension",
    "slice": "use slice syntax",
}  # fmt: skip

#: Attribute names with no use in a contract but a known use in sandbox escapes.
#: Checked at deploy for a clear early error; the runtime allow-list stops them anyway.
FORBIDDEN_ATTRIBUTES = frozenset(
    {
        "format", "format_map", "mro", "translate", "maketrans", "with_traceback",
        "f_back", "f_builtins", "f_code", "f_globals", "f_lasti", "f_lineno",
        "f_locals", "f_trace", "func_globals", "func_code", "func_closure",
        "func_defaults", "func_dict", "im_func", "im_self", "im_class",
    }
)  # fmt: skip
FORBIDDEN_ATTRIBUTE_PREFIXES = ("gi_", "cr_", "ag_", "tb_", "co_")

#: Binary operators whose result size can grow with their operands, whose cost grows
#: faster than their size (``// %``), or (``%``) that format strings: routed through a
#: guard.
GUARDED_BINOPS = {
    ast.Add: "_add",
    ast.Sub: "_sub",
    ast.FloorDiv: "_floordiv",
    ast.Mult: "_mul",
    ast.Pow: "_pow",
    ast.LShift: "_lsh",
    ast.Mod: "_mod",
    ast.BitOr: "_or",
}
GUARDED_INPLACE = {
    ast.Add: "_iadd",
    ast.Sub: "_sub",
    ast.FloorDiv: "_floordiv",
    ast.Mult: "_imul",
    ast.Pow: "_pow",
    ast.LShift: "_lsh",
    ast.Mod: "_mod",
    ast.BitOr: "_ior",
}
#: Operator codes passed to ``_augattr`` / ``_augitem``.
OP_CODES = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.FloorDiv: "//", ast.Mod: "%",
    ast.Pow: "**", ast.LShift: "<<", ast.RShift: ">>", ast.BitOr: "|",
    ast.BitXor: "^", ast.BitAnd: "&",
}  # fmt: skip
COMPARE_GUARDS = {
    ast.Eq: "_eq", ast.NotEq: "_ne", ast.Lt: "_lt", ast.LtE: "_le",
    ast.Gt: "_gt", ast.GtE: "_ge", ast.In: "_in", ast.NotIn: "_nin",
}  # fmt: skip

_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class MethodSpec:
    """An entry point: what the VM checks before calling it."""

    name: str
    params: tuple[str, ...]
    #: Allowed argument types per parameter (``None``: any storable value).
    types: tuple[tuple[type, ...] | None, ...]
    required: int
    is_view: bool


@dataclass(frozen=True)
class FieldSpec:
    """A storage field declared in the contract class."""

    name: str
    kind: str  # "map" or "var"


@dataclass
class CompiledContract:
    """The checked, instrumented and compiled form of one source text.

    Shared by every contract deployed with the same source, hence keyed by
    ``code_id`` (SHA-256 of the UTF-8 source).
    """

    code_id: bytes
    source: str
    code: CodeType
    class_name: str
    methods: dict[str, MethodSpec]
    fields: dict[str, FieldSpec]
    has_init: bool
    extra: dict[str, Any] = field(default_factory=dict)
    #: ``from std.<module> import <name> as <bound>``: (module, name, bound), in order.
    imports: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True)
class CompiledLibrary:
    """A module of the standard library (tally/vm/stdlib): functions and constants in
    the contract language, checked and instrumented like a contract."""

    module: str
    code_id: bytes  # SHA-256 of the UTF-8 source
    source: str
    code: CodeType
    exports: frozenset[str]


def code_id_of(source: str) -> bytes:
    """SHA-256 of the UTF-8 source: the code id of a contract that imports nothing, and
    the key of the compiled-code cache."""
    return hashlib.sha256(source.encode("utf-8")).digest()


def linked_code_id(source: str, libraries: list[CompiledLibrary]) -> bytes:
    """The code id of a contract importing ``libraries``: SHA-256 of its source, then
    for each library in module-name order a NUL, the module name, a NUL and the
    library's code id. Sources hold no NUL, so the preimage is unambiguous. It names
    every line of code a call can run."""
    if not libraries:
        return code_id_of(source)
    h = hashlib.sha256(source.encode("utf-8"))
    for lib in sorted(libraries, key=lambda x: x.module):
        h.update(b"\0" + lib.module.encode("ascii") + b"\0" + lib.code_id)
    return h.digest()


def _reject(node: ast.AST | None, message: str) -> ContractRejected:
    return ContractRejected(message, getattr(node, "lineno", None))


def _is_scalar_constant(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Constant)
        and type(node.value) in (int, str, bytes, bool)
        or (isinstance(node, ast.Constant) and node.value is None)
    )


def _is_int_constant(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is int


def _weight(nodes: Sequence[ast.AST] | ast.AST | None) -> int:
    """Steps charged for evaluating these nodes once: their AST node count."""
    if nodes is None:
        return 0
    if isinstance(nodes, ast.AST):
        nodes = [nodes]
    return sum(1 for n in nodes for _ in ast.walk(n))


def _block_weight(body: list[ast.stmt]) -> int:
    """Worst-case steps of one pass over ``body`` up to the next metering point.

    Loops and nested functions meter themselves, so they add only their header
    here; an ``if`` adds its test and its heavier branch. Charging the worst case
    up front keeps metering to one call per function entry and loop iteration.
    """
    total = 0
    for stmt in body:
        if isinstance(stmt, ast.If):
            total += _weight(stmt.test) + max(_block_weight(stmt.body), _block_weight(stmt.orelse))
        elif isinstance(stmt, ast.For):
            total += _weight(stmt.iter) + _weight(stmt.target) + _block_weight(stmt.orelse) + 1
        elif isinstance(stmt, ast.While):
            total += _weight(stmt.test) + _block_weight(stmt.orelse) + 1
        elif isinstance(stmt, ast.FunctionDef):
            # kw_defaults holds None for a keyword-only parameter without a default, which
            # _weight cannot walk: such a nested function fails to compile (AttributeError).
            # Left as it is: accepting it would change which contracts deploy.
            kw_defaults = stmt.args.kw_defaults
            total += 1 + _weight(stmt.args.defaults) + _weight(kw_defaults)  # pyright: ignore[reportArgumentType]
        else:
            total += _weight(stmt)
    return max(total, 1)


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------

_ALLOWED_EXPRESSIONS = (
    ast.BoolOp, ast.NamedExpr, ast.BinOp, ast.UnaryOp, ast.Lambda, ast.IfExp, ast.Dict,
    ast.List, ast.Tuple, ast.ListComp, ast.DictComp, ast.GeneratorExp, ast.Compare,
    ast.Call, ast.FormattedValue, ast.JoinedStr, ast.Constant, ast.Attribute,
    ast.Subscript, ast.Starred, ast.Name, ast.Slice,
)  # fmt: skip
_ALLOWED_FUNCTION_STATEMENTS = (
    ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Return, ast.If, ast.For,
    ast.While, ast.Break, ast.Continue, ast.Pass, ast.Raise, ast.Delete, ast.FunctionDef,
    ast.Nonlocal,
)  # fmt: skip
_STATEMENT_HINTS = {
    ast.Import: "only 'from std.<module> import <name>' is allowed, at module level",
    ast.ImportFrom: "imports are allowed only at module level: 'from std.<module> import <name>'",
    ast.Try: "try/except is not allowed: errors revert the call (use try_call for calls)",
    ast.With: "with is not allowed",
    ast.AsyncWith: "async code is not allowed",
    ast.AsyncFor: "async code is not allowed",
    ast.AsyncFunctionDef: "async code is not allowed",
    ast.Global: "global is not allowed: module state is constant",
    ast.ClassDef: "only one class, the contract, at module level",
    ast.Assert: "assert is not allowed (it vanishes under python -O); use require()",
    ast.Match: "match is not allowed",
}
_EXPRESSION_HINTS = {
    ast.Set: "sets are not allowed: their order depends on the hash seed",
    ast.SetComp: "sets are not allowed: their order depends on the hash seed",
    ast.Yield: "generators (yield) are not allowed",
    ast.YieldFrom: "generators (yield) are not allowed",
    ast.Await: "async code is not allowed",
}
if hasattr(ast, "TryStar"):
    _STATEMENT_HINTS[ast.TryStar] = _STATEMENT_HINTS[ast.Try]


class _Validator:
    """Walks the whole tree once, rejecting anything outside the allow-list and
    collecting what the rewriter and the VM need (the class, fields, methods)."""

    def __init__(self, tree: ast.Module, limits: Limits, library: bool = False) -> None:
        self.tree = tree
        self.limits = limits
        #: Checking a standard-library module: no class, no imports.
        self.library = library
        self.imports: list[tuple[str, str, str]] = []
        self.libraries: dict[str, CompiledLibrary] = {}
        self.module_names: set[str] = set()
        self.class_node: ast.ClassDef | None = None
        self.bound_names: set[str] = set()
        self.methods: dict[str, MethodSpec] = {}
        self.fields: dict[str, FieldSpec] = {}
        self.views: set[str] = set()
        #: Names `self.<name>` may read: fields, methods, class constants.
        self.member_names: set[str] = set()

    # -- structure -------------------------------------------------------------------

    def run(self) -> None:
        self._collect_bound_names()
        for stmt in self.tree.body:
            if _is_docstring(stmt):
                continue
            if isinstance(stmt, ast.ImportFrom) and not self.library:
                self._check_import(stmt)
            elif isinstance(stmt, ast.ClassDef) and self.library:
                raise _reject(stmt, "a library module holds functions and constants, no class")
            elif isinstance(stmt, (ast.Import, ast.ImportFrom)) and self.library:
                raise _reject(stmt, "a library module imports nothing")
            elif isinstance(stmt, ast.ClassDef):
                if self.class_node is not None:
                    raise _reject(stmt, "a module defines exactly one contract class")
                self.class_node = stmt
                self._check_class(stmt)
            elif isinstance(stmt, ast.FunctionDef):
                self._check_function(stmt, method=False)
            elif isinstance(stmt, ast.Assign):
                self._check_constant(stmt)
            else:
                raise _reject(stmt, _STATEMENT_HINTS.get(
                    type(stmt),
                    "only constants, functions and the contract class are allowed at module level",
                ))  # fmt: skip
        if self.library:
            return
        if self.class_node is None:
            raise _reject(
                None, "no contract class: define one class whose methods are entry points"
            )

    def _check_import(self, stmt: ast.ImportFrom) -> None:
        module = stmt.module or ""
        if stmt.level or module not in stdlib.LIBRARIES:
            known = ", ".join(sorted(stdlib.LIBRARIES))
            raise _reject(stmt, f"no library module {module!r}: the standard library is {known}")
        lib = library(module)
        self.libraries[module] = lib
        for alias in stmt.names:
            if alias.name == "*":
                raise _reject(stmt, "name what you import: 'from std.<module> import a, b'")
            if alias.name not in lib.exports:
                raise _reject(stmt, f"{module} has no {alias.name!r}")
            bound = alias.asname or alias.name
            self._check_binding(stmt, bound)
            if bound in self.module_names or any(b == bound for _, _, b in self.imports):
                raise _reject(stmt, f"{bound!r} is bound twice at module level")
            self.imports.append((module, alias.name, bound))

    def _collect_bound_names(self) -> None:
        for stmt in self.tree.body:  # what module level defines, for _check_import
            if isinstance(stmt, (ast.FunctionDef, ast.ClassDef)):
                self.module_names.add(stmt.name)
            elif isinstance(stmt, ast.Assign):
                self.module_names.update(
                    t.id for t in stmt.targets if isinstance(t, ast.Name))
        for node in ast.walk(self.tree):
            if isinstance(node, ast.alias):
                self.bound_names.add(node.asname or node.name)
            if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
                self.bound_names.add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.bound_names.add(node.name)
            elif isinstance(node, ast.arg):
                self.bound_names.add(node.arg)

    def _check_class(self, node: ast.ClassDef) -> None:
        self._check_binding(node, node.name)
        if node.decorator_list:
            raise _reject(node, "the contract class takes no decorators")
        if node.keywords:
            raise _reject(node, "the contract class takes no keywords (no metaclass)")
        if any(not (isinstance(b, ast.Name) and b.id == "Contract") for b in node.bases):
            raise _reject(node, "the contract class may only derive from Contract")
        for stmt in node.body:
            if _is_docstring(stmt) or isinstance(stmt, ast.Pass):
                continue
            if isinstance(stmt, ast.FunctionDef):
                self._check_method(stmt)
            elif isinstance(stmt, ast.Assign) and _is_declaration(stmt.value):
                self._check_declaration(stmt)
            elif isinstance(stmt, ast.Assign):
                self._check_constant(stmt)
                name = stmt.targets[0].id  # type: ignore[attr-defined]
                if name in self.member_names:
                    raise _reject(stmt, f"{name!r} is defined twice")
                self.member_names.add(name)
            else:
                raise _reject(stmt, _STATEMENT_HINTS.get(
                    type(stmt),
                    "a contract class holds storage declarations, constants and methods",
                ))  # fmt: skip

    def _check_declaration(self, stmt: ast.Assign) -> None:
        if len(stmt.targets) != 1 or not isinstance(stmt.targets[0], ast.Name):
            raise _reject(stmt, "declare one storage field per line: name = Map(...) or Var(...)")
        name = stmt.targets[0].id
        self._check_identifier(stmt, name)
        call = stmt.value
        assert isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
        kind = call.func.id
        want = 2 if kind == "Map" else 1
        if len(call.args) > want or (kind == "Map" and len(call.args) != 2):
            raise _reject(stmt, f"{kind} takes {want} type argument(s)")
        for arg in call.args:
            if not (isinstance(arg, ast.Name) and arg.id in TYPE_NAMES):
                raise _reject(arg, f"storage types are {', '.join(TYPE_NAMES)}")
        if call.args and kind == "Map":
            key_type = call.args[0]
            assert isinstance(key_type, ast.Name)  # every argument was checked above
            if key_type.id not in ("str", "int", "bytes"):
                raise _reject(stmt, "map keys are str, int or bytes")
        for kw in call.keywords:
            if kw.arg != "default":
                raise _reject(stmt, f"{kind} accepts only default=")
            self._check_literal(kw.value, allow_containers=True)
        if name in self.member_names:
            raise _reject(stmt, f"{name!r} is defined twice")
        self.fields[name] = FieldSpec(name, "map" if kind == "Map" else "var")
        self.member_names.add(name)

    def _check_constant(self, stmt: ast.Assign) -> None:
        if len(stmt.targets) != 1 or not isinstance(stmt.targets[0], ast.Name):
            raise _reject(stmt, "constants are assigned one per line: NAME = value")
        self._check_binding(stmt, stmt.targets[0].id)
        self._check_constant_expr(stmt.value)

    def _check_constant_expr(self, node: ast.AST) -> None:
        """Module and class constants: literals and arithmetic on them, nothing mutable,
        because the module namespace is built once and shared by every call."""
        for sub in ast.walk(node):
            if isinstance(sub, (ast.BinOp, ast.UnaryOp, ast.operator, ast.unaryop, ast.Load)):
                continue
            if isinstance(sub, ast.Constant):
                self._check_constant_value(sub)
            elif isinstance(sub, ast.Name):
                self._check_name_load(sub)
            else:
                raise _reject(sub, "constants must be int, str, bytes, bool or None expressions")
        self._check_expr(node)

    def _check_literal(self, node: ast.AST, allow_containers: bool) -> None:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Constant):
                self._check_constant_value(sub)
            elif isinstance(sub, (ast.USub, ast.expr_context)) or (
                isinstance(sub, ast.UnaryOp) and isinstance(sub.op, ast.USub)
            ):
                continue
            elif not (allow_containers and isinstance(sub, (ast.List, ast.Dict))):
                raise _reject(sub, "default values must be literals")

    def _check_method(self, node: ast.FunctionDef) -> None:
        is_view = False
        for dec in node.decorator_list:
            if isinstance(dec, ast.Name) and dec.id == "view":
                is_view = True
            else:
                raise _reject(dec, "the only decorator is @view")
        args = node.args
        if not args.args or args.args[0].arg != "self" or args.posonlyargs:
            raise _reject(node, f"method {node.name!r} must take self as its first parameter")
        if args.kwonlyargs:
            raise _reject(node, "entry points take positional parameters only")
        if node.name == "init" and is_view:
            raise _reject(node, "init cannot be a view")
        params = [a.arg for a in args.args[1:]]
        types = tuple(self._annotation_types(a.annotation) for a in args.args[1:])
        self._check_function(node, method=True)
        if node.name in self.member_names:
            raise _reject(node, f"{node.name!r} is defined twice")
        self.member_names.add(node.name)
        self.methods[node.name] = MethodSpec(
            node.name, tuple(params), types, len(params) - len(args.defaults), is_view
        )

    def _annotation_types(self, node: ast.AST | None) -> tuple[type, ...] | None:
        if node is None:
            return None
        if isinstance(node, ast.Constant) and node.value is None:
            return (type(None),)
        if isinstance(node, ast.Name) and node.id in TYPE_NAMES:
            return (TYPE_NAMES[node.id],)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            left = self._annotation_types(node.left) or ()
            right = self._annotation_types(node.right) or ()
            return left + right
        raise _reject(node, f"annotations are {', '.join(TYPE_NAMES)}, None, or unions of them")

    def _check_function(self, node: ast.FunctionDef, method: bool) -> None:
        if method:
            self._check_identifier(node, node.name)
        else:
            self._check_binding(node, node.name)
        if not method and node.decorator_list:
            raise _reject(node, "functions take no decorators (only methods may be @view)")
        self._check_arguments(node.args, method=method)
        for a in node.args.args + node.args.posonlyargs + node.args.kwonlyargs:
            self._annotation_types(a.annotation)
        if node.returns is not None:
            self._annotation_types(node.returns)
        for stmt in node.body:
            self._check_statement(stmt)

    def _check_arguments(self, args: ast.arguments, method: bool = False) -> None:
        if args.vararg or args.kwarg:
            raise _reject(args.vararg or args.kwarg, "*args and **kwargs are not allowed")
        for i, a in enumerate(args.posonlyargs + args.args + args.kwonlyargs):
            if method and i == 0:
                self._check_identifier(a, a.arg)  # `self`, checked by _check_method
            else:
                self._check_binding(a, a.arg)
        # Defaults are evaluated once and shared by every later call: literals only.
        for default in list(args.defaults) + [d for d in args.kw_defaults if d is not None]:
            for sub in ast.walk(default):
                if isinstance(sub, ast.Constant):
                    self._check_constant_value(sub)
                elif not isinstance(sub, (ast.USub, ast.UnaryOp)) or (
                    isinstance(sub, ast.UnaryOp) and not isinstance(sub.op, ast.USub)
                ):
                    raise _reject(default, "default values must be int, str, bytes, bool or None")

    # -- statements and expressions ----------------------------------------------------

    def _check_statement(self, stmt: ast.stmt) -> None:
        if not isinstance(stmt, _ALLOWED_FUNCTION_STATEMENTS):
            raise _reject(
                stmt, _STATEMENT_HINTS.get(type(stmt), f"{type(stmt).__name__} is not allowed")
            )
        if isinstance(stmt, ast.FunctionDef):
            self._check_function(stmt, method=False)
            return
        if isinstance(stmt, ast.Raise):
            if stmt.cause is not None or stmt.exc is None:
                raise _reject(stmt, "write raise ContractError(message)")
            exc = stmt.exc.func if isinstance(stmt.exc, ast.Call) else stmt.exc
            if not (isinstance(exc, ast.Name) and exc.id == "ContractError"):
                raise _reject(stmt, "only ContractError can be raised")
        if isinstance(stmt, (ast.For, ast.AsyncFor)):
            self._check_simple_target(stmt.target)
        if isinstance(stmt, ast.AugAssign):
            target = stmt.target
            if isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Slice):
                raise _reject(stmt, "augmented assignment to a slice is not allowed")
        if isinstance(stmt, ast.AnnAssign) and not isinstance(stmt.target, ast.Name):
            raise _reject(stmt, "annotated assignment only to a plain name")
        if isinstance(stmt, ast.Delete):
            for t in stmt.targets:
                if not isinstance(t, (ast.Name, ast.Subscript)):
                    raise _reject(stmt, "del works on names and subscripts only")
        if isinstance(stmt, ast.Nonlocal):
            for name in stmt.names:
                self._check_binding(stmt, name)
        if isinstance(stmt, ast.AnnAssign):
            self._annotation_types(stmt.annotation)
            children: list[ast.AST] = [stmt.target]
            if stmt.value:
                children.append(stmt.value)
        else:
            children = list(ast.iter_child_nodes(stmt))
        for child in children:
            if isinstance(child, ast.stmt):
                self._check_statement(child)
            elif isinstance(child, ast.expr):
                self._check_expr(child)
            elif isinstance(child, (ast.operator, ast.expr_context)):
                if isinstance(child, (ast.Div, ast.MatMult)):
                    raise _reject(stmt, _division_hint(child))
            else:
                raise _reject(stmt, f"{type(child).__name__} is not allowed")

    def _check_simple_target(self, target: ast.AST) -> None:
        if isinstance(target, ast.Name):
            return
        if isinstance(target, (ast.Tuple, ast.List)):
            for elt in target.elts:
                self._check_simple_target(elt.value if isinstance(elt, ast.Starred) else elt)
            return
        raise _reject(target, "loop targets must be names")

    def _check_expr(self, node: ast.AST) -> None:
        # Iterative, so a deep expression cannot exhaust the host's stack here.
        stack = [node]
        while stack:
            n = stack.pop()
            self._check_expr_node(n)
            for child in ast.iter_child_nodes(n):
                if isinstance(child, (ast.expr_context, ast.boolop, ast.unaryop)):
                    continue
                if isinstance(child, (ast.operator, ast.cmpop)):
                    if isinstance(child, (ast.Div, ast.MatMult)):
                        raise _reject(n, _division_hint(child))
                    continue
                if isinstance(child, ast.comprehension):
                    if child.is_async:
                        raise _reject(n, "async comprehensions are not allowed")
                    self._check_simple_target(child.target)
                    stack.extend([child.target, child.iter, *child.ifs])
                    continue
                if isinstance(child, ast.keyword):
                    if child.arg is not None:
                        self._check_identifier(n, child.arg)
                    stack.append(child.value)
                    continue
                if isinstance(child, ast.arguments):
                    self._check_arguments(child)
                    continue
                stack.append(child)

    def _check_expr_node(self, n: ast.AST) -> None:
        if not isinstance(n, _ALLOWED_EXPRESSIONS):
            raise _reject(n, _EXPRESSION_HINTS.get(type(n), f"{type(n).__name__} is not allowed"))
        if isinstance(n, ast.Constant):
            self._check_constant_value(n)
        elif isinstance(n, ast.Name):
            if isinstance(n.ctx, ast.Load):
                self._check_name_load(n)
            else:
                self._check_binding(n, n.id)
        elif isinstance(n, ast.Attribute):
            self._check_attribute(n, n.attr)
            if isinstance(n.ctx, ast.Del):
                raise _reject(n, "attributes cannot be deleted")
        elif isinstance(n, ast.Compare):
            for op, right, left in zip(
                n.ops, n.comparators, [n.left, *n.comparators[:-1]], strict=True
            ):
                if isinstance(op, (ast.Is, ast.IsNot)) and not (
                    _is_singleton(left) or _is_singleton(right)
                ):
                    raise _reject(n, "'is' compares with None, True or False only; use ==")
            if len(n.ops) > 1 and not all(
                isinstance(c, (ast.Name, ast.Constant)) for c in n.comparators[:-1]
            ):
                raise _reject(
                    n, "in a chained comparison the middle operands must be names or literals"
                )
        elif (
            isinstance(n, ast.FormattedValue)
            and n.format_spec is not None
            and not isinstance(n.format_spec, ast.JoinedStr)
        ):
            raise _reject(n, "unsupported format spec")

    def _check_constant_value(self, n: ast.Constant) -> None:
        v = n.value
        if type(v) is float:
            raise _reject(n, "float literals are not allowed: use integers (e.g. amounts in cents)")
        if type(v) is complex:
            raise _reject(n, "complex numbers are not allowed")
        if v is Ellipsis:
            raise _reject(n, "... is not allowed")
        if type(v) not in (int, str, bytes, bool) and v is not None:
            raise _reject(n, f"constant of type {type(v).__name__} is not allowed")
        if type(v) is int and v.bit_length() > self.limits.max_int_bits:
            raise _reject(n, f"integer literal larger than {self.limits.max_int_bits} bits")

    def _check_name_load(self, n: ast.Name) -> None:
        name = n.id
        self._check_identifier(n, name)
        if name in FORBIDDEN_NAMES:
            raise _reject(n, f"{name}() is not available: {FORBIDDEN_NAMES[name]}")
        if self.class_node is not None and name == self.class_node.name:
            raise _reject(n, "the contract class cannot be referenced; use self")
        if name in RUNTIME_NAMES or name in BUILTIN_NAMES or name in self.bound_names:
            return
        raise _reject(n, f"unknown name {name!r}")

    def _check_binding(self, node: ast.AST, name: str) -> None:
        self._check_identifier(node, name)
        if name in RUNTIME_NAMES:
            raise _reject(node, f"{name!r} is a runtime name and cannot be rebound")
        if name == "self":
            # The rewriter reads `self.x` without a guard; that is safe only because
            # `self` is always the contract instance.
            raise _reject(node, "'self' is only the first parameter of a method")

    def _check_identifier(self, node: ast.AST, name: str) -> None:
        if name.startswith("_"):
            raise _reject(node, f"names starting with '_' are reserved ({name!r})")
        if not name.isascii():
            raise _reject(node, f"identifiers must be ASCII ({name!r})")

    def _check_attribute(self, node: ast.AST, name: str) -> None:
        self._check_identifier(node, name)
        if name in FORBIDDEN_ATTRIBUTES or name.startswith(FORBIDDEN_ATTRIBUTE_PREFIXES):
            raise _reject(node, f"attribute {name!r} is not available")


def _division_hint(op: ast.operator) -> str:
    if isinstance(op, ast.Div):
        return "true division '/' makes floats: use '//' for integer division"
    return "'@' is not allowed"


def _is_singleton(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Constant)
        and node.value in (None, True, False)
        and (type(node.value) is not int)
    )


def _is_docstring(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    )


def _is_declaration(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("Map", "Var")
    )


# --------------------------------------------------------------------------------------
# Rewriting
# --------------------------------------------------------------------------------------


def _call(name: str, *args: ast.expr) -> ast.Call:
    return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=list(args), keywords=[])


def _meter(field: str, ctx: ast.expr_context | None = None) -> ast.Attribute:
    """``_m.<field>``: the running call's :class:`~tally.vm.guards.Meter`."""
    return ast.Attribute(value=ast.Name(id="_m", ctx=ast.Load()), attr=field, ctx=ctx or ast.Load())


def _meter_add(field: str, op: ast.operator, n: int) -> ast.AugAssign:
    return ast.AugAssign(target=_meter(field, ast.Store()), op=op, value=_const(n))


def _event_record(call: ast.expr) -> tuple[ast.Constant, list[str], ast.Dict] | None:
    """``emit("Name", {"key": value, ...})`` as :meth:`_Rewriter.visit_Expr` takes it:
    an event name that ``emit`` accepts, and a dict display whose keys are distinct
    ASCII str constants; else ``None``."""
    if not (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Name)
        and call.func.id == "emit"
        and not call.keywords
        and len(call.args) == 2
        and isinstance(call.args[0], ast.Constant)
        and type(call.args[0].value) is str
        and 0 < len(call.args[0].value) <= 64
        and isinstance(call.args[1], ast.Dict)
    ):
        return None
    data = call.args[1]
    keys: list[str] = []
    for k in data.keys:
        if not (isinstance(k, ast.Constant) and type(k.value) is str and k.value.isascii()):
            return None  # also `**spread` (a None key)
        keys.append(k.value)
    if len(set(keys)) != len(keys):
        return None
    return call.args[0], keys, data


def _star_depth(target: ast.AST, level: int = 0) -> int:
    """How deep in an assignment target a starred name sits (0: none; 1: ``a, *b``;
    2: ``(a, *b), c``): the unpacking guard charges the copies down to that level."""
    if isinstance(target, ast.Starred):
        return level
    if isinstance(target, (ast.Tuple, ast.List)):
        return max((_star_depth(e, level + 1) for e in target.elts), default=0)
    return 0


#: Ints whose hash is themselves (CPython hashes ints modulo ``2**61 - 1``).
_HASH_LIMIT = (1 << 61) - 1


def _is_cheap_key(node: ast.expr) -> bool:
    """A constant key that needs no run-time key guard: short text, or an int that
    hashes to itself."""
    if not isinstance(node, ast.Constant):
        return False
    v = node.value
    if isinstance(v, (str, bytes)):
        return len(v) < 16
    if type(v) is int:
        return -_HASH_LIMIT < v < _HASH_LIMIT
    return True  # bool, None


def _const(value: Any) -> ast.Constant:
    return ast.Constant(value=value)


class _Rewriter(ast.NodeTransformer):
    """Inserts metering and routes data-dependent operations through guards.

    Runs on a validated tree only, so it can assume every node is allowed.
    """

    def __init__(
        self, members: set[str], var_fields: set[str], map_fields: set[str], max_frames: int
    ) -> None:
        self.members = members
        self.max_frames = max_frames
        self.var_fields = var_fields
        self.map_fields = map_fields
        self.temp_counter = 0
        self.in_class = False
        #: Inside a method (or a closure in one), where `self` is the contract
        #: instance: the validator lets nothing else bind that name.
        self.self_is_instance = False

    def direct(self, node: ast.Attribute) -> bool:
        """Whether ``node`` reads ``self.<member>`` or ``ctx.<field>``, which need no
        run-time guard: their receivers are fixed and their names checked here."""
        value = node.value
        if not isinstance(value, ast.Name):
            return False
        if value.id == "ctx":
            if node.attr not in CTX_FIELDS:
                raise _reject(
                    node, f"ctx has no attribute {node.attr!r} ({', '.join(sorted(CTX_FIELDS))})"
                )
            if not isinstance(node.ctx, ast.Load):
                raise _reject(node, "ctx is read-only")
            return True
        if value.id == "self" and self.self_is_instance:
            if node.attr not in self.members:
                raise _reject(node, f"the contract has no field, method or constant {node.attr!r}")
            if not isinstance(node.ctx, ast.Load) and node.attr not in self.var_fields:
                raise _reject(node, f"only Var fields can be assigned ({node.attr!r} is not one)")
            return True
        return False

    def temp(self) -> str:
        self.temp_counter += 1
        return f"_t{self.temp_counter}"

    # -- definitions -----------------------------------------------------------------

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.ClassDef:
        self.in_class = True
        node.body = [self.visit(stmt) for stmt in node.body]
        self.in_class = False
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        is_view = self.in_class and any(
            isinstance(d, ast.Name) and d.id == "view" for d in node.decorator_list
        )
        was_in_class, self.in_class = self.in_class, False
        was_method = self.self_is_instance
        if was_in_class:
            self.self_is_instance = True
        weight = _block_weight(node.body)
        for a in node.args.args + node.args.posonlyargs + node.args.kwonlyargs:
            a.annotation = None
        node.returns = None
        body = self.visit_block(node.body)
        # Entry and exit, written out on the meter `_m` (rather than two guard calls):
        # charge the weight and count a frame, uncount it on the way out; a view also
        # raises read_only while it runs. `_entered()` raises the error for whichever
        # check failed.
        enter: list[ast.stmt] = [
            _meter_add("steps", ast.Sub(), weight),
            _meter_add("frames", ast.Add(), 1),
            ast.If(
                test=ast.BoolOp(
                    op=ast.Or(),
                    values=[
                        ast.Compare(_meter("steps"), [ast.Lt()], [_const(0)]),
                        ast.Compare(_meter("frames"), [ast.Gt()], [_const(self.max_frames)]),
                    ],
                ),
                body=[ast.Expr(_call("_entered"))],
                orelse=[],
            ),
        ]
        leave: list[ast.stmt] = [_meter_add("frames", ast.Sub(), 1)]
        if is_view:
            enter.append(_meter_add("read_only", ast.Add(), 1))
            leave.append(_meter_add("read_only", ast.Sub(), 1))
        node.body = [*enter, ast.Try(body=body, handlers=[], orelse=[], finalbody=leave)]
        # @view is recorded at compile time; drop it so nothing runs at definition.
        node.decorator_list = []
        self.in_class = was_in_class
        self.self_is_instance = was_method
        return node

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        return None  # the VM binds imported names before the module runs

    def visit_Lambda(self, node: ast.Lambda) -> ast.expr:
        weight = _weight(node.body)
        node.body = _call("_lamexit", _call("_lamenter", _const(weight)), self.visit(node.body))
        return node

    def visit_block(self, body: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for stmt in body:
            result = self.visit(stmt)
            if result is None:
                continue
            if isinstance(result, list):
                out.extend(result)
            else:
                out.append(result)
        return out or [ast.Pass()]

    # -- statements ------------------------------------------------------------------

    def visit_For(self, node: ast.For) -> ast.For:
        weight = _block_weight(node.body) + _weight(node.target)
        node.iter = self.visit(node.iter)
        depth = _star_depth(node.target)
        if depth:
            # `for a, *b in rows` copies each row into b: charge for it
            node.iter = _call("_unpackeach", node.iter, _const(depth))
        node.body = [ast.Expr(_call("_s", _const(weight))), *self.visit_block(node.body)]
        node.orelse = self.visit_block(node.orelse) if node.orelse else []
        return node

    def visit_While(self, node: ast.While) -> ast.While:
        weight = _block_weight(node.body) + _weight(node.test)
        node.test = self.visit(node.test)
        node.body = [ast.Expr(_call("_s", _const(weight))), *self.visit_block(node.body)]
        node.orelse = self.visit_block(node.orelse) if node.orelse else []
        return node

    def visit_If(self, node: ast.If) -> ast.If:
        node.test = self.visit(node.test)
        node.body = self.visit_block(node.body)
        node.orelse = self.visit_block(node.orelse) if node.orelse else []
        return node

    def visit_Expr(self, node: ast.Expr) -> ast.stmt:
        """Two statements contracts use all the time get a cheaper form; steps are
        unaffected (they are counted on the source as written), and any other form
        of these calls is left as it is.

        * ``require(test)`` or ``require(test, "constant")`` becomes
          ``if not test: raise ContractError(message)``, what ``require`` does;
        * ``emit("Name", {"key": value, ...})`` with constant, distinct ASCII keys
          becomes ``_emitrec("Name", size, {"key": value, ...})``
          (:meth:`~tally.vm.machine._Runtime.emit_record`), which checks only the
          values and falls back to ``emit`` itself for anything unusual.
        """
        call = node.value
        record = _event_record(call)
        if record is not None:
            name, keys, data = record
            size = 1 + sum(len(k) + 5 for k in keys)  # the keys' part of snapshot's sum
            data = self.visit(data)
            return ast.copy_location(ast.Expr(_call("_emitrec", name, _const(size), data)), node)
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Name)
            and call.func.id == "require"
            and not call.keywords
            and len(call.args) in (1, 2)
            and not isinstance(call.args[0], ast.Starred)
            and (len(call.args) == 1 or isinstance(call.args[1], ast.Constant))
        ):
            message = call.args[1] if len(call.args) == 2 else _const(REQUIRE_MESSAGE)
            fail = ast.Raise(exc=_call("_require_failed", message), cause=None)
            test = ast.UnaryOp(op=ast.Not(), operand=self.visit(call.args[0]))
            return ast.copy_location(ast.If(test=test, body=[fail], orelse=[]), node)
        self.generic_visit(node)
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.stmt | list[ast.stmt]:
        if node.value is None:
            return ast.Pass()
        return self.visit_Assign(
            ast.Assign(targets=[node.target], value=node.value, lineno=node.lineno)
        )

    def visit_Assign(self, node: ast.Assign) -> ast.stmt | list[ast.stmt]:
        value = self.visit(node.value)
        depth = max(_star_depth(t) for t in node.targets)
        if depth:
            # `first, *rest = big` copies big (and `(a, *b), c = x` copies x[0]):
            # charge for it.
            value = _call("_unpack", value, _const(depth))
        after: list[ast.stmt] = []
        targets = [self.rewrite_target(t, after) for t in node.targets]
        node.targets = targets
        node.value = value
        return [node, *after] if after else node

    def rewrite_target(self, target: ast.expr, after: list[ast.stmt]) -> ast.expr:
        """Attribute and slice stores go through guards: assign to a temporary, then
        call the guard with it once the plain targets are done."""
        if isinstance(target, ast.Attribute) and self.direct(target):
            return target
        if isinstance(target, ast.Attribute):
            tmp = self.temp()
            obj = self.visit(target.value)
            after.append(
                ast.Expr(_call("_sa", obj, _const(target.attr), ast.Name(id=tmp, ctx=ast.Load())))
            )
            return ast.Name(id=tmp, ctx=ast.Store())
        if isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Slice):
            tmp = self.temp()
            s = target.slice
            after.append(ast.Expr(_call(
                "_setslice", self.visit(target.value), self.slice_part(s.lower),
                self.slice_part(s.upper), self.slice_part(s.step), ast.Name(id=tmp, ctx=ast.Load()),
            )))  # fmt: skip
            return ast.Name(id=tmp, ctx=ast.Store())
        if isinstance(target, (ast.Tuple, ast.List)):
            target.elts = [self.rewrite_target(e, after) for e in target.elts]
            return target
        if isinstance(target, ast.Starred):
            target.value = self.rewrite_target(target.value, after)
            return target
        if isinstance(target, ast.Subscript):
            target.value = self.visit(target.value)
            target.slice = self.visit(target.slice)
            if not self.is_map(target.value) and not _is_cheap_key(target.slice):
                # Into a dict, an int key must hash to itself and a long key is charged
                # for hashing: `(_t := obj)[_skey(_t, k)] = v`, which evaluates obj,
                # then k, then stores, as `obj[k] = v` does.
                tmp = self.temp()
                target.value = ast.NamedExpr(
                    target=ast.Name(id=tmp, ctx=ast.Store()), value=target.value
                )
                target.slice = _call("_skey", ast.Name(id=tmp, ctx=ast.Load()), target.slice)
            return target
        return target

    def slice_part(self, node: ast.expr | None) -> ast.expr:
        return _const(None) if node is None else self.visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.stmt:
        value = self.visit(node.value)
        op = type(node.op)
        target = node.target
        if isinstance(target, ast.Attribute) and self.direct(target):
            guard = GUARDED_INPLACE.get(op)
            if guard is None or (op is ast.Add and _is_int_constant(node.value)):
                node.value = value
                return node
            load = ast.Attribute(
                value=ast.Name(id="self", ctx=ast.Load()), attr=target.attr, ctx=ast.Load()
            )
            return ast.Assign(targets=[target], value=_call(guard, load, value), lineno=node.lineno)
        if isinstance(target, ast.Attribute):
            return ast.Expr(
                _call(
                    "_augattr",
                    self.visit(target.value),
                    _const(target.attr),
                    _const(OP_CODES[op]),
                    value,
                )
            )
        if (
            isinstance(target, ast.Subscript)
            and op is ast.Add
            and not isinstance(target.slice, ast.Slice)
            and isinstance(target.value, ast.Attribute)
            and self.direct(target.value)
            and isinstance(target.value.value, ast.Name)
            and target.value.value.id == "self"
            and target.value.attr in self.map_fields
        ):
            # `self.<map>[k] += v`, the commonest update: one guard that knows maps
            return ast.Expr(_call("_mapadd", target.value, self.visit(target.slice), value))
        if isinstance(target, ast.Subscript):
            return ast.Expr(
                _call(
                    "_augitem",
                    self.visit(target.value),
                    self.visit(target.slice),
                    _const(OP_CODES[op]),
                    value,
                )
            )
        assert isinstance(target, ast.Name)
        guard = GUARDED_INPLACE.get(op)
        if guard is None or (op is ast.Add and _is_int_constant(node.value)):
            node.value = value
            return node
        load = ast.Name(id=target.id, ctx=ast.Load())
        return ast.Assign(targets=[target], value=_call(guard, load, value), lineno=node.lineno)

    def visit_Delete(self, node: ast.Delete) -> ast.stmt | list[ast.stmt]:
        out: list[ast.stmt] = []
        for t in node.targets:
            if isinstance(t, ast.Subscript):
                if isinstance(t.slice, ast.Slice):
                    s = t.slice
                    out.append(
                        ast.Expr(
                            _call(
                                "_delslice",
                                self.visit(t.value),
                                self.slice_part(s.lower),
                                self.slice_part(s.upper),
                                self.slice_part(s.step),
                            )
                        )
                    )
                else:
                    out.append(
                        ast.Expr(_call("_delitem", self.visit(t.value), self.visit(t.slice)))
                    )
            else:
                out.append(ast.Delete(targets=[t]))
        return out

    # -- expressions -----------------------------------------------------------------

    def visit_Attribute(self, node: ast.Attribute) -> ast.expr:
        # Stores are handled by rewrite_target; only loads reach here.
        if self.direct(node):
            return node
        return _call("_ga", self.visit(node.value), _const(node.attr))

    def visit_Subscript(self, node: ast.Subscript) -> ast.expr:
        if isinstance(node.slice, ast.Slice) and isinstance(node.ctx, ast.Load):
            s = node.slice
            return _call(
                "_getslice",
                self.visit(node.value),
                self.slice_part(s.lower),
                self.slice_part(s.upper),
                self.slice_part(s.step),
            )
        self.generic_visit(node)
        if not self.is_map(node.value) and not _is_cheap_key(node.slice):
            # hashing a long str/bytes key (and comparing it with an equal one) is
            # charged by its length
            node.slice = _call("_key", node.slice)
        return node

    def is_map(self, node: ast.expr) -> bool:
        """Whether ``node`` is ``self.<map field>``: a storage map, whose keys the VM
        encodes, bounds and charges itself."""
        return (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
            and self.self_is_instance
            and node.attr in self.map_fields
        )

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        self.generic_visit(node)
        op = type(node.op)
        guard = GUARDED_BINOPS.get(op)
        if guard is None:
            return node
        if op in (ast.Add, ast.Sub, ast.BitOr) and (
            _is_int_constant(node.left) or _is_int_constant(node.right)
        ):
            # int arithmetic with a literal cannot grow a sequence, and an int by at
            # most a bit beyond the literal's size per operation
            return node
        if op is ast.Mod and _is_int_constant(node.left):
            return node
        return _call(guard, node.left, node.right)

    def visit_Compare(self, node: ast.Compare) -> ast.expr:
        self.generic_visit(node)
        parts: list[ast.expr] = []
        left = node.left
        for op, right in zip(node.ops, node.comparators, strict=True):
            parts.append(self.compare_pair(left, op, right))
            left = right
        if len(parts) == 1:
            return parts[0]
        return ast.BoolOp(op=ast.And(), values=parts)

    def compare_pair(self, left: ast.expr, op: ast.cmpop, right: ast.expr) -> ast.expr:
        guard = COMPARE_GUARDS.get(type(op))
        cheap = (
            guard is None  # is / is not
            or (isinstance(op, (ast.In, ast.NotIn)) and _is_scalar_constant(right))
            or (
                not isinstance(op, (ast.In, ast.NotIn))
                and (_is_scalar_constant(left) or _is_scalar_constant(right))
            )
        )
        if cheap or guard is None:  # (cheap whenever guard is None)
            return ast.Compare(left=left, ops=[op], comparators=[right])
        return _call(guard, left, right)

    def visit_Tuple(self, node: ast.Tuple) -> ast.expr:
        self.generic_visit(node)
        if isinstance(node.ctx, ast.Load):
            # Tuples of tuples hash recursively (and a DAG of them exponentially);
            # contracts get lists instead. See docs/contracts.md.
            return ast.List(elts=node.elts, ctx=ast.Load())
        return node

    def visit_Starred(self, node: ast.Starred) -> ast.expr:
        self.generic_visit(node)
        if isinstance(node.ctx, ast.Load):
            node.value = _call("_spread", node.value)
        return node

    def visit_Dict(self, node: ast.Dict) -> ast.expr:
        self.generic_visit(node)
        node.keys = [
            k if k is None or _is_cheap_key(k) else _call("_dkey", k) for k in node.keys
        ]
        node.values = [
            _call("_spread", v) if k is None else v
            for k, v in zip(node.keys, node.values, strict=True)
        ]
        return node

    def visit_Call(self, node: ast.Call) -> ast.expr:
        self.generic_visit(node)
        for kw in node.keywords:
            if kw.arg is None:
                kw.value = _call("_spread", kw.value)
        return node

    def visit_FormattedValue(self, node: ast.FormattedValue) -> ast.expr:
        value = self.visit(node.value)
        spec = self.visit(node.format_spec) if node.format_spec is not None else _const("")
        return ast.FormattedValue(
            value=_call("_fmt", value, _const(node.conversion), spec),
            conversion=-1,
            format_spec=None,
        )

    def visit_comprehension(self, node: ast.comprehension) -> ast.comprehension:
        self.generic_visit(node)
        return node

    def _comprehension(self, node: ast.ListComp | ast.GeneratorExp | ast.DictComp) -> ast.expr:
        if isinstance(node, ast.DictComp):
            weight = _weight(node.key) + _weight(node.value)
        else:
            weight = _weight(node.elt)
        for gen in node.generators:
            weight += _weight(gen.ifs) + _weight(gen.target)
        # (guards wrapped around nodes not yet visited are visited with them)
        for gen in node.generators:
            depth = _star_depth(gen.target)
            if depth:
                # `[b for a, *b in rows]` copies each row into b: charge for it
                gen.iter = _call("_unpackeach", gen.iter, _const(depth))
        if isinstance(node, ast.DictComp) and not _is_cheap_key(node.key):
            node.key = _call("_dkey", node.key)

        self.generic_visit(node)
        for gen in node.generators:
            gen.ifs = [_call("_tick", _const(weight)), *gen.ifs]
        if isinstance(node, ast.ListComp):  # an item kept: its memory (guards.budget)
            node.elt = _call("_kept", node.elt)
        elif isinstance(node, ast.DictComp):
            node.key, node.value = _call("_kept", node.key), _call("_kept", node.value)
        return node

    visit_ListComp = _comprehension
    visit_GeneratorExp = _comprehension
    visit_DictComp = _comprehension


# --------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------


def _check_source_text(source: str, limits: Limits) -> None:
    if type(source) is not str:
        raise ContractRejected("source must be a str")
    if (
        len(source) > limits.max_source_bytes
        or len(source.encode("utf-8", "surrogatepass")) > limits.max_source_bytes
    ):
        raise ContractRejected(f"source larger than {limits.max_source_bytes} bytes")
    if "\x00" in source:
        raise ContractRejected("source contains a NUL character")
    try:
        source.encode("utf-8")
    except UnicodeEncodeError:
        raise ContractRejected("source is not valid Unicode") from None


def _check_identifiers_ascii(source: str) -> None:
    """Python NFKC-normalises identifiers, so ``ｅｘｅｃ`` parses as ``exec`` and
    the AST cannot tell. Reject non-ASCII identifiers on the token stream, before
    normalisation; non-ASCII text stays fine in strings and comments."""
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.NAME and not tok.string.isascii():
                raise ContractRejected(f"identifiers must be ASCII ({tok.string!r})", tok.start[0])
            if tok.type == tokenize.ERRORTOKEN and not tok.string.isspace():
                raise ContractRejected(f"unexpected character {tok.string!r}", tok.start[0])
    except (tokenize.TokenError, SyntaxError) as e:
        raise ContractRejected(f"cannot tokenize: {e}") from None


def _check_shape(tree: ast.AST, limits: Limits) -> None:
    stack = [(tree, 0)]
    count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth > limits.max_ast_depth:
            raise _reject(node, f"code nested deeper than {limits.max_ast_depth}")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    if count > limits.max_source_bytes:
        raise ContractRejected("too many syntax nodes")


def _parse(source: str, limits: Limits) -> ast.Module:
    _check_source_text(source, limits)
    try:
        with warnings.catch_warnings():
            # SyntaxWarnings are for people at a terminal; the host's log is no place for them.
            warnings.simplefilter("ignore")
            tree = ast.parse(source, filename="<contract>", mode="exec")
    except SyntaxError as e:
        raise ContractRejected(f"syntax error: {e.msg}", e.lineno) from None
    except (ValueError, RecursionError, MemoryError, OverflowError) as e:
        raise ContractRejected(f"cannot parse: {type(e).__name__}") from None
    _check_identifiers_ascii(source)
    _check_shape(tree, limits)
    return tree


def _compile_tree(tree: ast.Module, code_id: bytes) -> CodeType:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return compile(
                tree, f"<contract {code_id.hex()[:16]}>", "exec", dont_inherit=True, optimize=0
            )
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as e:
        raise ContractRejected(f"cannot compile: {type(e).__name__}: {e}") from None


def compile_library(module: str, source: str, limits: Limits = DEFAULT_LIMITS) -> CompiledLibrary:
    """Check and compile a standard-library module: the rules of a contract's module
    level (constants and functions), no class and no imports."""
    tree = _parse(source, limits)
    validator = _Validator(tree, limits, library=True)
    validator.run()
    exports = frozenset(
        name for name in validator.module_names if not name.startswith("_")
    )
    rewritten = _Rewriter(set(), set(), set(), limits.max_frames).visit(tree)
    ast.fix_missing_locations(rewritten)
    code_id = code_id_of(source)
    return CompiledLibrary(module, code_id, source, _compile_tree(rewritten, code_id), exports)


@cache
def library(module: str) -> CompiledLibrary:
    """Standard-library ``module`` (tally/vm/stdlib holds the pinned texts), checked and
    compiled once per process."""
    return compile_library(module, stdlib.source(module))


def compile_contract(source: str, limits: Limits = DEFAULT_LIMITS) -> CompiledContract:
    """Check and compile ``source``; raise :class:`ContractRejected` if it is not a
    valid contract. Pure: the same source (and standard library) always gives the
    same result."""
    tree = _parse(source, limits)
    validator = _Validator(tree, limits)
    validator.run()
    class_node = validator.class_node
    assert class_node is not None
    var_fields = {name for name, f in validator.fields.items() if f.kind == "var"}
    map_fields = {name for name, f in validator.fields.items() if f.kind == "map"}
    rewriter = _Rewriter(validator.member_names, var_fields, map_fields, limits.max_frames)
    rewritten = rewriter.visit(tree)
    ast.fix_missing_locations(rewritten)
    code_id = linked_code_id(source, list(validator.libraries.values()))
    code = _compile_tree(rewritten, code_id)
    return CompiledContract(
        code_id=code_id,
        source=source,
        code=code,
        class_name=class_node.name,
        methods=validator.methods,
        fields=validator.fields,
        has_init="init" in validator.methods,
        imports=tuple(validator.imports),
    )


def is_valid_contract_name(name: object) -> bool:
    """Contract names: ASCII letters, digits, ``_ . -``; start with a letter or digit;
    at most 64 characters. No ``/``, so storage keys stay unambiguous."""
    return type(name) is str and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}", name) is not None
