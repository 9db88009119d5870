"""Authenticated API access (docs/access.md, decision 0032) on a served consortium node,
over TLS with a node certificate the bank's CA issued (made by ``openssl``), through
real TLS clients: ``curl --cacert`` and httpx.

Accounts (tests/support/consortium.py): alice and carol are the bank's customers (carol
is frozen), bob the broker's; the bank's issuer issued BOND to alice; the regulator
sees everything. lender is a key nobody registered.
"""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tally import keys as keyfiles
from tally.cli.main import app as cli
from tally.keys import NamedKey
from tally.protocol import access as wire
from tally.sdk import AsyncTallyClient, SignedRequests, TallyClient, TallyError
from tests.support.api import serve
from tests.support.chain import CHAIN
from tests.support.consortium import Consortium
from tests.support.openssl_ca import OpensslPki


class Served:
    def __init__(self, c: Consortium, url: str, ca: Path, tmp: Path) -> None:
        self.c, self.url, self.ca, self.tmp = c, url, ca, tmp
        self.issue_tx = ""
        self.alice_registered = -1

    def key(self, name: str) -> NamedKey:
        return self.c.keys[name]

    def client(self, name: str | None) -> httpx.Client:
        auth = None if name is None else SignedRequests(self.key(name), CHAIN)
        return httpx.Client(base_url=self.url, verify=self.tls(), auth=auth, timeout=30)

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    def get(self, name: str | None, path: str) -> httpx.Response:
        with self.client(name) as http:
            return http.get(path)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("access")
    pki = OpensslPki(tmp_path_factory.mktemp("pki"))
    c = Consortium(tmp_path_factory.mktemp("chain"), "intl", pki)
    c.register("alice", "bank")
    c.register("bob", "broker")
    c.register("carol", "bank")
    c.ok("admin", "account.freeze", {"account": c.addr("carol"), "reason": "test"})
    issue = c.ok("issuer", "asset.issue", {"asset": "BOND", "class": "security",
                                           "name": "Bond", "quantity": 100,
                                           "to": c.addr("alice")})
    tls = pki.server_leaf(c.cas["bank"], "node.bank")
    with serve(c.node, access="authenticated", tls=tls) as url:
        s = Served(c, url, c.cas["bank"].cert, tmp)
        s.issue_tx = issue.tx
        s.alice_registered = next(
            e["log_index"] for e in c.node.reader.events(-1, 1000)
            if e["type"] == "account.register" and e["to"] == c.addr("alice"))
        yield s
    c.stop()


def refused(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    return body["message"]


def signed(s: Served, name: str, path: str, *, chain: str = CHAIN, offset: int = 0,
           nonce: str | None = None) -> dict[str, str]:
    return wire.sign_headers(s.key(name).key, chain=chain, method="GET", target=path,
                             body=b"", timestamp=int(time.time()) + offset, nonce=nonce)


# --- who is asking ---------------------------------------------------------------------

def test_unsigned_requests_are_401_with_the_chain(served: Served) -> None:
    r = served.get(None, "/v1/status")
    message = refused(r, 401, "UNAUTHENTICATED")
    assert "Tally-Signature" in message and CHAIN in message
    assert r.headers[wire.CHAIN] == CHAIN
    assert "tally-signature" in r.headers["www-authenticate"].lower()
    # the API's description is served to anyone
    assert served.get(None, "/openapi.json").status_code == 200


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_curl_over_tls(served: Served) -> None:
    def curl(*headers: str, path: str = "/v1/status") -> tuple[int, dict[str, Any]]:
        args = ["curl", "-sS", "--cacert", str(served.ca), "-w", "\n%{http_code}"]
        for h in headers:
            args += ["-H", h]
        out = subprocess.run([*args, served.url + path], capture_output=True, text=True,
                             check=True, timeout=30).stdout
        body, status = out.rsplit("\n", 1)
        return int(status), json.loads(body)

    status, body = curl()
    assert status == 401 and body["code"] == "UNAUTHENTICATED"
    headers = signed(served, "alice", "/v1/status")
    status, body = curl(*(f"{k}: {v}" for k, v in headers.items()))
    assert status == 200 and body["chain_id"] == CHAIN
    path = f"/v1/accounts/{served.c.addr('alice')}/identity"
    headers = signed(served, "bob", path)
    status, body = curl(*(f"{k}: {v}" for k, v in headers.items()), path=path)
    assert status == 403 and body["code"] == "FORBIDDEN"


def test_tls_from_another_network_is_refused(served: Served) -> None:
    """A client that trusts another network's CA does not get past the handshake."""
    other = served.c.cas["broker"].cert
    context = ssl.create_default_context(cafile=str(other))
    with pytest.raises(httpx.ConnectError), httpx.Client(verify=context) as http:
        http.get(served.url + "/v1/status")


def test_bad_signatures_are_401_with_clear_messages(served: Served) -> None:
    path = "/v1/status"
    with served.client(None) as http:
        def answer(headers: dict[str, str]) -> str:
            return refused(http.get(path, headers=headers), 401, "UNAUTHENTICATED")

        good = signed(served, "alice", path)
        forged = good | {wire.SIGNATURE: base64.b64encode(b"\1" * 64).decode()}
        assert "does not verify" in answer(forged)
        assert "another chain" in answer(signed(served, "alice", path, chain="other-net"))
        assert "not registered" in answer(signed(served, "lender", path))
        assert "frozen" in answer(signed(served, "carol", path))
        assert "±60 s" in answer(signed(served, "alice", path, offset=-120))
        assert "±60 s" in answer(signed(served, "alice", path, offset=+120))
        # a signature over another path does not open this one
        assert "does not verify" in answer(signed(served, "alice", "/v1/genesis"))
        once = signed(served, "alice", path)
        assert http.get(path, headers=once).status_code == 200
        assert "already used" in answer(once)
        assert "missing" in answer({k: v for k, v in good.items() if k != wire.NONCE})


# --- what each may see -----------------------------------------------------------------

def test_public_chain_data_for_any_identity(served: Served) -> None:
    for name in ("alice", "bob", "regulator"):
        for path in ("/v1/status", "/v1/genesis", "/v1/blocks/latest", "/v1/checkpoints/1",
                     "/v1/members", "/v1/committee", "/v1/proofs/inclusion?index=0&size=1",
                     "/v1/evidence/validator-updates"):
            assert served.get(name, path).status_code == 200, (name, path)


def test_accounts_are_seen_by_their_member_and_regulators(served: Served) -> None:
    alice = served.c.addr("alice")
    for path in (f"/v1/accounts/{alice}", f"/v1/accounts/{alice}/identity",
                 f"/v1/accounts/{alice}/claims", f"/v1/proofs/state?key=account/{alice}",
                 f"/v1/may?account={alice}&resource=tx:custody.transfer"):
        for name in ("alice", "admin", "regulator"):   # herself, her bank's staff
            assert served.get(name, path).status_code == 200, (name, path)
        message = refused(served.get("bob", path), 403, "FORBIDDEN")
        assert served.c.addr("bob") in message and "broker" in message


def test_assets_and_transactions_are_seen_by_their_parties(served: Served) -> None:
    for path in ("/v1/assets/BOND", "/v1/assets/BOND/history",
                 f"/v1/assets/BOND/holdings/{served.c.addr('alice')}",
                 f"/v1/txs/{served.issue_tx}", f"/v1/txs/{served.issue_tx}/receipt"):
        for name in ("alice", "issuer", "regulator"):  # holder, issuer, regulator
            assert served.get(name, path).status_code == 200, (name, path)
        refused(served.get("bob", path), 403, "FORBIDDEN")
    refused(served.get("bob", "/v1/assets/NOPE"), 404, "NOT_FOUND")
    # not yet filtered by party: regulators only
    refused(served.get("alice", "/v1/commercial/events"), 403, "FORBIDDEN")


def test_events_and_evidence_are_filtered(served: Served) -> None:
    c, alice, bob = served.c, served.c.addr("alice"), served.c.addr("bob")
    everything = served.get("regulator", "/v1/events").json()
    bobs = served.get("bob", "/v1/events").json()
    assert 0 < len(bobs) < len(everything)
    assert all(alice not in (e["from"], e["to"]) and e["asset"] != "BOND" for e in bobs)
    assert any(e["to"] == bob for e in bobs)
    assert any(e["type"] == "asset.issue" for e in served.get("alice", "/v1/events").json())
    index = served.alice_registered
    refused(served.get("bob", f"/v1/evidence/{index}"), 403, "FORBIDDEN")
    assert served.get("alice", f"/v1/evidence/{index}").json()["event"]["index"] == index
    assert served.get("regulator", f"/v1/evidence/{index}").status_code == 200
    # the live stream: what bob may see, up to his own registration, and nothing of alice's
    seen = []
    with served.client("bob") as http, http.stream("GET", "/v1/events/stream") as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[6:]))
                if seen[-1]["type"] == "account.register" and seen[-1]["to"] == bob:
                    break
    assert seen == [e for e in bobs if e["log_index"] <= seen[-1]["log_index"]]
    assert c.addr("alice") not in {e["to"] for e in seen}


def test_submission_needs_a_signed_request(served: Served) -> None:
    """The transaction carries its own signature; the request's signer may differ."""
    c = served.c
    raw = c.sign("alice", "custody.transfer", {"asset": "BOND", "to": c.addr("bob"),
                                               "quantity": 1})
    body = {"tx": base64.b64encode(raw).decode()}
    refused(served.client(None).post("/v1/txs", json=body), 401, "UNAUTHENTICATED")
    with served.client("regulator") as http:
        receipt = http.post("/v1/txs", json=body).json()
    assert receipt["code"] == "OK", receipt
    # bob now holds BOND: its asset is his to see
    assert served.get("bob", "/v1/assets/BOND").status_code == 200


# --- the SDK and the CLI ---------------------------------------------------------------

def test_sdk_signs_transparently(served: Served) -> None:
    c = served.c
    with TallyClient(served.url, signer=c.keys["alice"], verify=str(served.ca)) as client:
        assert client.status().chain_id == CHAIN          # learnt the chain from a 401
        assert client.identity(c.addr("alice")).member == "bank"
        assert client.asset("BOND").asset == "BOND"
        with pytest.raises(TallyError) as refused_read:
            client.identity(c.addr("bob"))
        assert refused_read.value.code == "FORBIDDEN"
    with TallyClient(served.url, verify=str(served.ca)) as anonymous, \
            pytest.raises(TallyError) as unsigned:
        anonymous.status()
    assert unsigned.value.code == "UNAUTHENTICATED"

    async def run() -> str:
        async with AsyncTallyClient(served.url, signer=c.keys["bob"], chain=CHAIN,
                                    verify=str(served.ca)) as client:
            return (await client.identity(c.addr("bob"))).member

    import asyncio
    assert asyncio.run(run()) == "broker"


def test_cli_reads_with_key_and_ca_file(served: Served) -> None:
    c = served.c
    keyfiles.save(served.tmp / "alice.json", c.keys["alice"])
    runner = CliRunner()
    ok = runner.invoke(cli, ["--key", str(served.tmp / "alice.json"), "--ca-file",
                             str(served.ca), "account", "show", c.addr("alice"),
                             "--url", served.url])
    assert ok.exit_code == 0, ok.output
    assert '"member": "bank"' in ok.output
    no = runner.invoke(cli, ["account", "show", c.addr("alice"), "--url", served.url],
                       env={"TALLY_KEY": str(served.tmp / "alice.json"),
                            "TALLY_CA_FILE": str(served.ca)})
    assert no.exit_code == 0, no.output
    unsigned = runner.invoke(cli, ["--ca-file", str(served.ca), "status", "--url",
                                   served.url], env={"TALLY_KEY": ""})
    assert unsigned.exit_code == 1 and "UNAUTHENTICATED" in unsigned.output


def test_open_mode_is_unchanged(served: Served) -> None:
    with serve(served.c.node) as url:
        r = httpx.get(f"{url}/v1/accounts/{served.c.addr('alice')}/identity")
        assert r.status_code == 200 and r.json()["member"] == "bank"
        assert wire.CHAIN not in httpx.get(f"{url}/v1/status").headers
