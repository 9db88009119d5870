"""The contract language as an author uses it: the example token, a counter that
calls another contract, storage, views, events, errors and reverts, host calls."""

from __future__ import annotations

import threading

import pytest

from tally.vm import (
    VM,
    AlreadyDeployed,
    BadArguments,
    Context,
    ContractError,
    ContractNotFound,
    ContractRuntimeError,
    DictStorage,
    HostError,
    HostRequest,
    InvalidValue,
    MethodNotFound,
    ViewWriteError,
    VMBusy,
    VMError,
    code_id_key,
    decode_value,
    encode_value,
    source_key,
)
from tally.vm.testing import Harness

TOKEN = '''
class Token(Contract):
    """A fungible token: the owner mints, holders transfer."""

    owner = Var(str)
    supply = Var(int)
    balances = Map(str, int)

    def init(self, supply: int):
        self.owner = ctx.caller
        self.mint(ctx.caller, supply)

    def mint(self, to: str, amount: int):
        require(ctx.caller == self.owner, "only the owner can mint")
        require(amount > 0, "amount must be positive")
        self.balances[to] += amount
        self.supply += amount
        emit("Mint", {"to": to, "amount": amount})

    def transfer(self, to: str, amount: int) -> bool:
        require(amount > 0, "amount must be positive")
        sender = ctx.caller
        balance = self.balances[sender]
        require(balance >= amount, "insufficient balance")
        self.balances[sender] = balance - amount
        self.balances[to] += amount
        emit("Transfer", {"from": sender, "to": to, "amount": amount})
        return True

    @view
    def balance_of(self, account: str) -> int:
        return self.balances[account]
'''

COUNTER = '''
class Counter(Contract):
    """Counts, and can ask a token for a balance or move tokens it holds."""

    count = Var(int)
    log = Var(list)

    def bump(self, by: int = 1) -> int:
        self.count += by
        return self.count

    def bump_and_fail(self):
        self.count += 100
        emit("Bumped", {"by": 100})
        raise ContractError("changed my mind")

    def record_balance(self, token: str, account: str) -> int:
        balance = call(token, "balance_of", account)
        self.log = self.log + [balance]
        return balance

    def pay(self, token: str, to: str, amount: int) -> bool:
        self.count += 1
        return call(token, "transfer", to, amount)

    def pay_then_fail(self, token: str, to: str, amount: int):
        call(token, "transfer", to, amount)
        require(False, "abort after paying")

    def try_pay(self, token: str, to: str, amount: int) -> list:
        self.count += 1
        return try_call(token, "transfer", to, amount)

    def sneaky_view_call(self, token: str, to: str):
        return view_call(token, "transfer", to, 1)

    @view
    def get(self) -> int:
        return self.count

    @view
    def writes_in_view(self):
        self.count = 7
'''


@pytest.fixture
def h() -> Harness:
    h = Harness()
    h.deploy("tok", TOKEN, 1000, caller="alice")
    return h


def test_token_init_mints_supply_to_deployer(h: Harness) -> None:
    assert h.query("tok", "balance_of", "alice") == 1000
    assert h.query("tok", "balance_of", "nobody") == 0
    assert h.events[-1].name == "Mint"
    assert h.events[-1].data == {"to": "alice", "amount": 1000}


def test_token_transfer_moves_balance_and_emits(h: Harness) -> None:
    assert h.call("tok", "transfer", "bob", 300, caller="alice") is True
    assert h.query("tok", "balance_of", "alice") == 700
    assert h.query("tok", "balance_of", "bob") == 300
    ev = h.events[-1]
    assert (ev.contract, ev.name, ev.data) == (
        "tok",
        "Transfer",
        {"from": "alice", "to": "bob", "amount": 300},
    )


def test_token_transfer_over_balance_is_contract_error_and_writes_nothing(h: Harness) -> None:
    before = dict(h.storage.data)
    with pytest.raises(ContractError) as info:
        h.call("tok", "transfer", "bob", 5000, caller="alice")
    assert info.value.code == "CONTRACT_ERROR"
    assert info.value.message == "insufficient balance"
    assert info.value.contract == "tok"
    assert h.storage.data == before


def test_only_owner_mints(h: Harness) -> None:
    with pytest.raises(ContractError, match="only the owner"):
        h.call("tok", "mint", "mallory", 10, caller="mallory")
    h.call("tok", "mint", "carol", 5, caller="alice")
    assert h.query("tok", "balance_of", "carol") == 5


def test_storage_key_layout_and_canonical_values(h: Harness) -> None:
    data = h.storage.data
    assert (
        decode_value(data[code_id_key("tok")])
        == __import__("hashlib").sha256(TOKEN.encode()).digest()
    )
    assert decode_value(data[source_key("tok")]) == TOKEN
    assert data[b"c/tok/owner"] == encode_value("alice")
    assert data[b"c/tok/supply"] == encode_value(1000)
    assert data[b"c/tok/balances/" + encode_value("alice")] == encode_value(1000)


def test_write_set_is_sorted_and_deletes_are_none() -> None:
    h = Harness()
    h.deploy(
        "m",
        "class M:\n    m = Map(str, int)\n    def f(self):\n        self.m['b'] = 1\n        self.m['a'] = 2\n        del self.m['b']\n",
    )
    ws = h.result("m", "f").write_set
    assert list(ws) == sorted(ws)
    assert ws[b"c/m/m/" + encode_value("b")] is None
    assert ws[b"c/m/m/" + encode_value("a")] == encode_value(2)


def test_query_is_read_only_and_needs_a_view(h: Harness) -> None:
    r = h.vm.query("tok", "balance_of", ["alice"], storage=h.storage, ctx=h.ctx("x"))
    assert r.write_set == {} and r.events == [] and r.return_value == 1000
    with pytest.raises(MethodNotFound):
        h.vm.query("tok", "transfer", ["bob", 1], storage=h.storage, ctx=h.ctx("alice"))


def test_view_that_writes_is_typed_error() -> None:
    h = Harness()
    h.deploy("c", COUNTER)
    with pytest.raises(ViewWriteError) as info:
        h.call("c", "writes_in_view")
    assert info.value.code == "VM_VIEW_WRITE"


def test_counter_calls_token_view(h: Harness) -> None:
    h.deploy("c", COUNTER)
    assert h.call("c", "record_balance", "tok", "alice") == 1000
    assert decode_value(h.storage.data[b"c/c/log"]) == [1000]


def test_nested_call_caller_is_the_calling_contract(h: Harness) -> None:
    h.deploy("c", COUNTER)
    h.call("tok", "transfer", "c", 50, caller="alice")  # the counter holds 50 tokens
    assert h.call("c", "pay", "tok", "dave", 20, caller="anyone") is True
    assert h.query("tok", "balance_of", "c") == 30
    assert h.query("tok", "balance_of", "dave") == 20
    assert h.query("c", "get") == 1


def test_error_after_nested_call_reverts_both_contracts(h: Harness) -> None:
    h.deploy("c", COUNTER)
    h.call("tok", "transfer", "c", 50, caller="alice")
    before = dict(h.storage.data)
    n_events = len(h.events)
    with pytest.raises(ContractError, match="abort after paying"):
        h.call("c", "pay_then_fail", "tok", "dave", 20)
    assert h.storage.data == before
    assert len(h.events) == n_events


def test_nested_contract_error_reaches_caller_with_callee_message(h: Harness) -> None:
    h.deploy("c", COUNTER)
    with pytest.raises(ContractError) as info:
        h.call("c", "pay", "tok", "dave", 20)  # the counter holds nothing
    assert info.value.message == "insufficient balance"
    assert info.value.contract == "tok"


def test_try_call_reverts_only_the_callee(h: Harness) -> None:
    h.deploy("c", COUNTER)
    ok, err = h.call("c", "try_pay", "tok", "dave", 20)
    assert ok is False
    assert err == {"code": "CONTRACT_ERROR", "message": "insufficient balance"}
    assert h.query("c", "get") == 1  # the caller's own write stayed
    h.call("tok", "transfer", "c", 50)
    assert h.call("c", "try_pay", "tok", "dave", 20) == [True, True]
    assert h.query("tok", "balance_of", "dave") == 20


def test_view_call_makes_callee_read_only(h: Harness) -> None:
    h.deploy("c", COUNTER)
    h.call("tok", "transfer", "c", 50)
    with pytest.raises(ViewWriteError):
        h.call("c", "sneaky_view_call", "tok", "dave")


def test_raise_contract_error_reverts_writes_and_events() -> None:
    h = Harness()
    h.deploy("c", COUNTER)
    h.call("c", "bump", 2)
    with pytest.raises(ContractError, match="changed my mind"):
        h.call("c", "bump_and_fail")
    assert h.query("c", "get") == 2


def test_call_to_missing_contract_and_method(h: Harness) -> None:
    with pytest.raises(ContractNotFound):
        h.call("nope", "f")
    with pytest.raises(MethodNotFound):
        h.call("tok", "nope")
    with pytest.raises(MethodNotFound):
        h.call("tok", "init", 5)  # the constructor runs only at deploy


def test_arguments_are_checked_against_annotations(h: Harness) -> None:
    with pytest.raises(BadArguments):
        h.call("tok", "transfer", "bob", "10")
    with pytest.raises(BadArguments):
        h.call("tok", "transfer", "bob", True)  # bool is not int
    with pytest.raises(BadArguments):
        h.call("tok", "transfer", "bob")
    with pytest.raises(BadArguments):
        h.call("tok", "transfer", "bob", 1.5)


def test_deploy_twice_and_bad_names(h: Harness) -> None:
    with pytest.raises(AlreadyDeployed):
        h.deploy("tok", TOKEN, 1)
    with pytest.raises(BadArguments):
        h.deploy("bad/name", TOKEN, 1)


def test_same_source_two_contracts_have_separate_storage() -> None:
    h = Harness()
    h.deploy("a", TOKEN, 10)
    h.deploy("b", TOKEN, 20)
    assert h.query("a", "balance_of", "alice") == 10
    assert h.query("b", "balance_of", "alice") == 20


def test_context_fields_visible_to_contract() -> None:
    h = Harness()
    src = (
        "class C:\n"
        "    @view\n"
        "    def info(self) -> list:\n"
        "        return [ctx.caller, ctx.origin, ctx.contract, ctx.height, ctx.time_ms, ctx.tx_id]\n"
    )
    h.deploy("ctxc", src)
    vm, st = h.vm, h.storage
    r = vm.query(
        "ctxc", "info", [], storage=st, ctx=Context("bob", 7, 1234, b"\x01" * 32, origin="root")
    )
    assert r.return_value == ["bob", "root", "ctxc", 7, 1234, b"\x01" * 32]


def test_python_errors_become_runtime_errors_with_line() -> None:
    h = Harness()
    h.deploy("e", "class E:\n    def f(self):\n        d = {}\n        return d['missing']\n")
    with pytest.raises(ContractRuntimeError) as info:
        h.call("e", "f")
    assert info.value.code == "VM_RUNTIME_ERROR"
    assert "KeyError" in info.value.message and "line 4" in info.value.message


def test_maps_and_vars_typed() -> None:
    h = Harness()
    src = (
        "class T:\n"
        "    names = Map(int, str)\n"
        "    tags = Var(list)\n"
        "    maybe = Var(str, default=None)\n"
        "    def put(self, k, v):\n"
        "        self.names[k] = v\n"
        "    def set_maybe(self, v):\n"
        "        self.maybe = v\n"
        "    @view\n"
        "    def has(self, k) -> bool:\n"
        "        return k in self.names\n"
        "    @view\n"
        "    def read(self) -> list:\n"
        "        return [self.names.get(1, 'none'), self.tags, self.maybe]\n"
    )
    h.deploy("t", src)
    assert h.query("t", "read") == ["none", [], None]
    h.call("t", "put", 1, "one")
    assert h.query("t", "has", 1) is True and h.query("t", "has", 2) is False
    with pytest.raises(InvalidValue):
        h.call("t", "put", "1", "one")  # key type
    with pytest.raises(InvalidValue):
        h.call("t", "put", 2, 5)  # value type
    with pytest.raises(InvalidValue, match="float"):
        h.call("t", "put", 3, 1.5)  # unannotated parameters still take storable values only
    h.call("t", "set_maybe", None)
    h.call("t", "set_maybe", "x")
    assert h.query("t", "read") == ["one", [], "x"]


def test_stored_lists_are_copies() -> None:
    h = Harness()
    src = (
        "class L:\n"
        "    items = Var(list)\n"
        "    def f(self) -> list:\n"
        "        a = self.items\n"
        "        a.append(1)\n"  # mutating a read value does not write storage
        "        b = self.items\n"
        "        self.items = a\n"
        "        a.append(2)\n"  # nor does mutating after the write
        "        return [b, self.items]\n"
    )
    h.deploy("l", src)
    assert h.call("l", "f") == [[], [1]]


def _custody_host(request: HostRequest):
    """A toy custody module: balances under h/<account>, debiting the calling contract."""
    if request.function == "custody.transfer":
        to, amount = request.args
        src_key = b"h/" + request.contract.encode()
        have = decode_value(request.get(src_key) or encode_value(0))
        if have < amount:
            raise HostError("custody balance too low", code="CUSTODY_INSUFFICIENT")
        request.put(src_key, encode_value(have - amount))
        dst_key = b"h/" + to.encode()
        request.put(
            dst_key, encode_value(decode_value(request.get(dst_key) or encode_value(0)) + amount)
        )
        request.emit(
            "CustodyTransfer",
            {"from": request.contract, "to": to, "amount": amount},
            source="custody",
        )
        return True
    if request.function == "float":
        return 1.5
    if request.function == "boom":
        raise RuntimeError("host bug")
    raise HostError(f"unknown host function {request.function}", code="HOST_UNKNOWN")


VAULT = """
class Vault:
    paid = Var(int)

    def pay(self, to: str, amount: int, fail: bool):
        host_call("custody.transfer", to, amount)
        self.paid += amount
        require(not fail, "failing after the transfer")

    def store_host_value(self):
        self.paid = host_call("float")

    def boom(self):
        host_call("boom")
"""


def test_host_hook_custody_transfer_commits_with_contract() -> None:
    h = Harness(host=_custody_host)
    h.storage.data[b"h/vault"] = encode_value(100)
    h.deploy("vault", VAULT)
    r = h.result("vault", "pay", "erin", 30, False)
    assert r.write_set[b"h/vault"] == encode_value(70)
    assert r.write_set[b"h/erin"] == encode_value(30)
    assert [e.contract for e in r.events] == ["custody"]


def test_host_writes_revert_when_contract_fails_later() -> None:
    h = Harness(host=_custody_host)
    h.storage.data[b"h/vault"] = encode_value(100)
    h.deploy("vault", VAULT)
    before = dict(h.storage.data)
    with pytest.raises(ContractError):
        h.call("vault", "pay", "erin", 30, True)
    assert h.storage.data == before


def test_host_errors_are_typed() -> None:
    h = Harness(host=_custody_host)
    h.deploy("vault", VAULT)
    with pytest.raises(HostError) as info:
        h.call("vault", "pay", "erin", 30, False)
    assert info.value.code == "CUSTODY_INSUFFICIENT"
    with pytest.raises(HostError) as info:
        h.call("vault", "boom")
    assert info.value.code == "VM_HOST_ERROR"
    with pytest.raises(InvalidValue, match="float"):
        h.call("vault", "store_host_value")


def test_no_host_means_host_calls_fail_typed() -> None:
    h = Harness()
    h.deploy("vault", VAULT)
    with pytest.raises(HostError) as info:
        h.call("vault", "pay", "erin", 1, False)
    assert info.value.code == "VM_NO_HOST"


def test_host_cannot_reenter_vm() -> None:
    vm = VM()
    seen: list[VMError] = []

    def host(request: HostRequest):
        try:
            vm.call(
                "vault", "pay", ["x", 1, False], storage=DictStorage(), ctx=Context("a", 1, 1, b"")
            )
        except VMError as e:
            seen.append(e)
            raise
        return True

    h = Harness(vm=vm, host=host)
    h.deploy("vault", VAULT)
    with pytest.raises(VMBusy):
        h.call("vault", "pay", "erin", 1, False)
    assert [e.code for e in seen] == ["VM_BUSY"]


def test_vm_serialises_threads() -> None:
    h = Harness()
    h.deploy("c", COUNTER)
    storage, vm = h.storage, h.vm
    results: list[int] = []

    def worker() -> None:
        for _ in range(50):
            r = vm.call("c", "bump", [1], storage=storage, ctx=Context("t", 1, 1, b""))
            results.append(r.return_value)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Nothing is committed between calls, so every call sees count 0 and returns 1.
    assert results == [1] * 200


def test_calls_do_not_recompile(monkeypatch: pytest.MonkeyPatch) -> None:
    import tally.vm.machine as machine

    compiled: list[str] = []
    real = machine.compile_contract

    def counting(source: str, limits=machine.DEFAULT_LIMITS):  # type: ignore[no-untyped-def]
        compiled.append(source)
        return real(source, limits)

    monkeypatch.setattr(machine, "compile_contract", counting)
    h = Harness()
    source = TOKEN + "\n# a fresh source, so the process-wide cache has not seen it\n"
    h.deploy("t1", source, 5)
    fresh_vm = VM()  # another VM: no loaded module, but the compiled code is shared
    for _ in range(3):
        fresh_vm.call("t1", "transfer", ["bob", 1], storage=h.storage, ctx=h.ctx("alice"))
    h.deploy("t2", source, 5)
    assert len(compiled) == 1


def test_compiled_code_is_cached_by_source_hash() -> None:
    vm = VM()
    same_text = "".join(list(TOKEN))  # equal, but another string object
    assert same_text == TOKEN and same_text is not TOKEN
    assert vm.compile(same_text) is vm.compile(TOKEN)


def test_results_report_steps_used(h: Harness) -> None:
    r = h.result("tok", "transfer", "bob", 1)
    assert 0 < r.steps_used < 1000


def test_maps_are_not_iterable() -> None:
    h = Harness()
    h.deploy(
        "m",
        "class M:\n    m = Map(int, int)\n    def f(self):\n        return [k for k in self.m]\n",
    )
    with pytest.raises(ContractRuntimeError, match="not iterable"):
        h.call("m", "f")
