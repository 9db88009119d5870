"""The security corpus: known Python sandbox escapes, each stopped with a typed
error, either at deploy (the source is rejected) or at run time.

Every case is written the way an attacker would try it; the assertion is on the
error class, so a case that silently *succeeded* would fail the test.
"""

from __future__ import annotations

import textwrap

import pytest

from tally.vm import (
    ContractRejected,
    ContractRuntimeError,
    Forbidden,
    InvalidValue,
    VMError,
    compile_contract,
)
from tally.vm.testing import Harness


def method(body: str, prelude: str = "") -> str:
    """A contract whose entry point ``f`` runs ``body``."""
    return (
        prelude + "class C:\n    def f(self):\n" + textwrap.indent(textwrap.dedent(body), " " * 8)
    )


# (case id, source, error raised at deploy) -------------------------------------------
DEPLOY = [
    ("class-attr", method("return ().__class__")),
    ("subclasses", method("return object.__subclasses__()")),
    ("subclasses-via-literal", method("return [].__class__.__base__.__subclasses__()")),
    ("mro", method("return (1).__class__.__mro__")),
    ("base", method("return int.__base__")),
    ("globals-of-function", method("def g():\n    pass\nreturn g.__globals__")),
    ("builtins-name", method("return __builtins__")),
    ("builtins-tamper", method("__builtins__['len'] = None")),
    ("dict-of-self", method("return self.__dict__")),
    ("code-object", method("def g():\n    pass\nreturn g.__code__")),
    ("closure-cells", method("x = 1\ndef g():\n    return x\nreturn g.__closure__")),
    ("generator-yield", method("yield 1")),
    ("generator-frame", method("g = (x for x in [1])\nreturn g.gi_frame")),
    ("generator-code", method("g = (x for x in [1])\nreturn g.gi_code")),
    ("coroutine", "class C:\n    async def f(self):\n        pass\n"),
    ("coroutine-frame", method("c = self.f()\nreturn c.cr_frame")),
    ("traceback-frame", method("e = 1\nreturn e.tb_frame")),
    ("frame-back", method("fr = 1\nreturn fr.f_back.f_globals")),
    ("frame-builtins", method("fr = 1\nreturn fr.f_builtins")),
    ("format-attribute-access", method('return "{0.__class__}".format(1)')),
    ("format-map", method('return "{a}".format_map({"a": 1})')),
    ("format-bound-later", method('s = "{0.__init__.__globals__}"\nm = s.format\nreturn m(1)')),
    ("getattr-computed", method('return getattr(1, "__cl" + "ass__")')),
    ("getattr-escaped-name", method('return getattr(1, "\\x5f\\x5fclass\\x5f\\x5f")')),
    ("setattr", method('setattr(self, "x", 1)')),
    ("delattr", method('delattr(self, "x")')),
    ("hasattr", method('return hasattr(self, "x")')),
    ("vars", method("return vars()")),
    ("dir", method("return dir()")),
    ("globals", method("return globals()")),
    ("locals", method("return locals()")),
    ("compile", method('return compile("1", "x", "eval")')),
    ("exec", method('exec("1")')),
    ("eval", method('return eval("1")')),
    ("dunder-import", method('return __import__("os")')),
    ("import", "import os\n" + method("return 1")),
    ("import-in-method", method("import os\nreturn os.getcwd()")),
    ("importlib", "from importlib import import_module\n" + method("return 1")),
    ("sys-modules", method("return sys.modules")),
    ("decorator-runs-host-object", "class C:\n    @emit\n    def f(self):\n        pass\n"),
    ("decorator-on-helper", "@ctx\ndef g():\n    pass\n" + method("return 1")),
    ("metaclass", "class C(metaclass=type):\n    def f(self):\n        pass\n"),
    ("foreign-base", "class C(dict):\n    def f(self):\n        pass\n"),
    ("type-three-args", method('return type("X", (), {})')),
    ("rebind-runtime", method("require = 5")),
    ("rebind-runtime-module", "emit = 5\n" + method("return 1")),
    (
        "except-traceback",
        method("try:\n    1 // 0\nexcept Exception as e:\n    return e.__traceback__"),
    ),
    ("reduce", method("return (1).__reduce_ex__(2)")),
    ("pickle", "import pickle\n" + method("return 1")),
    ("operator-attrgetter", method('return operator.attrgetter("__class__")(1)')),
    ("lambda-default-captures", method("g = lambda x=ctx: x\nreturn g()")),
    ("default-captures-runtime", "class C:\n    def f(self, x=emit):\n        pass\n"),
    ("mutable-default", "class C:\n    def f(self, x=[]):\n        x.append(1)\n"),
    ("mutable-module-state", "CACHE = []\n" + method("return 1")),
    ("class-in-method", method("class D:\n    pass\nreturn D")),
    (
        "class-body-code",
        "class C:\n    for i in [1]:\n        pass\n    def f(self):\n        pass\n",
    ),
    ("class-body-call", "class C:\n    x = emit('X')\n    def f(self):\n        pass\n"),
    ("two-classes", "class A:\n    pass\nclass B:\n    pass\n"),
    ("super", method("return super().f()")),
    ("object-setattr", method('object.__setattr__(self, "x", 1)')),
    ("send-throw-generator", method("def g():\n    yield 1\nreturn g().send(None)")),
    ("help", method("help()")),
    ("open", method('return open("/etc/passwd").read()')),
    ("breakpoint", method("breakpoint()")),
    ("input", method("return input()")),
    ("print", method("print(1)")),
    ("exit", method("exit()")),
    ("fullwidth-exec", method('ｅｘｅｃ("1")')),
    ("combining-underscore", method("return self._\u0332_class__")),
    ("fullwidth-dunder", method("return self.＿＿class＿＿")),
    ("float-literal", method("return 1.5")),
    ("true-division", method("return 3 / 2")),
    ("complex-literal", method("return 2j")),
    ("float-builtin", method('return float("1")')),
    ("set-literal", method("return {1, 2}")),
    ("set-builtin", method("return set()")),
    ("is-identity", method("a = 1000\nreturn a is 1000")),
    ("global", "X = 1\n" + method("global X\nX = 2")),
    ("match-class-pattern", method("match 1:\n    case int(real=r):\n        return r")),
    ("with", method("with self:\n    pass")),
    ("assert", method("assert False")),
    ("reference-contract-class", method("return C")),
    ("underscore-walrus", method("return (_x := 1)")),
    ("underscore-kwarg", method("return dict(__class__=1)")),
    ("star-args", "class C:\n    def f(self, *args):\n        return args\n"),
    ("raise-other", method("raise ValueError('x')")),
    ("nul-byte", method("return 1") + "\x00"),
    ("deep-nesting", method("return " + "(" * 300 + "1" + ")" * 300)),
    ("mro-method", method("return int.mro()")),
    ("with-traceback", method("e = ContractError('x')\nreturn e.with_traceback(None)")),
    ("ctx-internals", method("return ctx.rt")),
    ("ctx-write", method("ctx.caller = 'root'")),
    ("set-undeclared-attribute", method("self.x = 5")),
    ("set-method", method("self.f = 5")),
    ("unknown-attribute", method("return self.nope")),
    ("rebind-self", method("self = ctx\nreturn self.caller")),
    ("rebind-self-walrus", method("return [(self := 1)]")),
    ("self-loop-target", method("for self in [1]:\n    pass")),
    ("self-in-lambda", method("g = lambda self: self.__class__\nreturn g(1)")),
    ("self-in-helper", "def g(self):\n    return self.x\n" + method("return g(1)")),
    ("self-comprehension", method("return [self for self in [1]]")),
]

# (case id, source, error raised when f runs) -----------------------------------------
RUNTIME = [
    ("generator-send", method("g = (x for x in [1])\nreturn g.send(None)"), Forbidden),
    ("generator-throw", method("g = (x for x in [1])\nreturn g.throw(ContractError)"), Forbidden),
    ("ctx-internals-aliased", method("c = ctx\nreturn c.rt"), Forbidden),
    # a class attribute of the ctx object (a frozenset: iteration order by hash seed)
    ("ctx-class-attribute-aliased", method("c = ctx\nreturn [x for x in c.FIELDS]"), Forbidden),
    (
        "map-internals",
        "class C:\n    m = Map(str, int)\n    def f(self):\n        return self.m.slot",
        Forbidden,
    ),
    ("safe-type-internals", method("return int.impl"), Forbidden),
    ("safe-type-pytype", method("return str.pytype"), Forbidden),
    ("partial-internals", method('j = ",".join\nreturn j.func'), Forbidden),
    ("bound-method-internals", method("return emit.rt"), Forbidden),
    ("function-attributes", method("g = lambda: 1\nreturn g.name"), Forbidden),
    ("exception-args", method("return ContractError('x').args"), Forbidden),
    ("codec-rot13", method('return "abc".encode("rot13")'), Forbidden),
    ("codec-unicode-escape", method('return b"\\\\x41".decode("unicode_escape")'), Forbidden),
    ("bytes-decoding-codec", method('return str(b"abc", "utf-7")'), Forbidden),
    ("percent-format", method('return "%s" % (1,)'), Forbidden),
    ("negative-power-float", method("return 2 ** -1"), Forbidden),
    ("pow-builtin-float", method("return pow(2, -1)"), Forbidden),
    ("format-float-presentation", method('return f"{1:f}"'), Forbidden),
    ("format-locale", method('return f"{1000:n}"'), Forbidden),
    ("format-function-address", method("return f'{self.f}'"), Forbidden),
    ("str-of-object", method("return str(self)"), Forbidden),
    ("set-undeclared-attribute-aliased", method("s = self\ns.x = 5"), Forbidden),
    ("set-method-aliased", method("s = self\ns.f = 5"), Forbidden),
    ("setattr-on-function", method("g = lambda: 1\ng.x = 1"), Forbidden),
    ("in-on-iterator", method("return 1 in zip([1], [2])"), Forbidden),
    ("sum-of-lists", method("return sum([[1], [2]], [])"), Forbidden),
    ("return-function", method("return self.f"), InvalidValue),
    (
        "store-function",
        "class C:\n    v = Var()\n    def f(self):\n        self.v = self.f",
        InvalidValue,
    ),
    ("emit-object", method("emit('E', {'x': ctx})"), InvalidValue),
    ("contract-error-carries-object", method("raise ContractError(self)"), None),
    ("unknown-attribute-aliased", method("s = self\nreturn s.nope"), ContractRuntimeError),
]


@pytest.mark.parametrize(("case", "source"), DEPLOY, ids=[c[0] for c in DEPLOY])
def test_rejected_at_deploy(case: str, source: str) -> None:
    with pytest.raises(ContractRejected) as info:
        compile_contract(source)
    assert info.value.code == "CONTRACT_REJECTED"
    assert info.value.message


@pytest.mark.parametrize(("case", "source", "error"), RUNTIME, ids=[c[0] for c in RUNTIME])
def test_stopped_at_run_time(case: str, source: str, error: type[VMError] | None) -> None:
    h = Harness()
    h.deploy("c", source)
    with pytest.raises(VMError) as info:
        h.call("c", "f")
    if error is not None:
        assert isinstance(info.value, error), info.value
    if case == "contract-error-carries-object":
        # The message is fixed text: no object, no address, rides out.
        assert info.value.message == "ContractError message must be a str"


def test_corpus_is_large_enough() -> None:
    assert len(DEPLOY) + len(RUNTIME) >= 30


def test_rejection_names_the_line() -> None:
    with pytest.raises(ContractRejected) as info:
        compile_contract(method("x = 1\nreturn x.__class__"))
    assert info.value.line == 4


def test_allow_listed_methods_work_but_never_leave() -> None:
    h = Harness()
    h.deploy("c", method("return 'abc'.upper().isupper()"))
    assert h.call("c", "f") is True
    h.deploy("d", method("return 'abc'.upper"))
    with pytest.raises(InvalidValue):
        h.call("d", "f")


def test_names_are_resolved_at_deploy() -> None:
    with pytest.raises(ContractRejected, match="unknown name"):
        compile_contract(method("return os"))
