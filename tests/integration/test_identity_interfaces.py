"""Identities and governance through the interfaces: the /v1 identity endpoints (happy
paths and their 4xx answers), the SDK's read methods, and the ``tally member``,
``account``, ``claim``, ``policy`` and ``proposal`` groups run as a subprocess against a
real node and API server, on the four-founder consortium chain (tests/support/consortium.py).

One chain serves the whole module (its CAs and blocks are the slow part); each test uses
its own customers, so the order of the tests does not matter.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tally import keys as keyfiles
from tally.identity import certs, commitment
from tally.sdk import AsyncTallyClient, NotFound, TallyClient, TallyError
from tests.support.api import serve
from tests.support.consortium import Consortium
from tests.support.openssl_ca import OpensslPki, openssl

ZERO_ID = "00" * 32


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Consortium, str]]:
    pki = OpensslPki(tmp_path_factory.mktemp("pki"))
    c = Consortium(tmp_path_factory.mktemp("chain"), "intl", pki)
    with serve(c.node) as url:
        yield c, url
    c.stop()


def get(url: str, path: str, **params: str | int) -> httpx.Response:
    return httpx.get(url + path, params=params, timeout=30)


def refused(response: httpx.Response, status: int, code: str = "INVALID_REQUEST") -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    return body["message"]


def resync(c: Consortium, *names: str) -> None:
    """After the CLI sent with these keys, sign the next transactions with fresh nonces."""
    for name in names:
        c._nonces[name] = c.node.reader.nonce(c.addr(name))


# --- the API --------------------------------------------------------------------------

def test_members(served: tuple[Consortium, str]) -> None:
    c, url = served
    members = get(url, "/v1/members").json()
    assert [m["id"] for m in members] == ["bank", "broker", "custody", "regulator"]
    assert all(m["status"] == "active" and len(m["cas"]) == 1 for m in members)
    bank = get(url, "/v1/members/bank").json()
    assert bank["name"] == "Bank A" and bank["credit_code"].startswith("91310000100000001")
    (ca,) = bank["ca_certificates"]
    assert ca["fingerprint"] == bank["cas"][0]
    assert certs.parse_certificate(ca["pem"].encode()).der == \
        certs.parse_certificate(c.cas["bank"].pem).der
    assert len(get(url, "/v1/members", limit=2).json()) == 2
    refused(get(url, "/v1/members/nobody"), 404, "NOT_FOUND")
    refused(get(url, "/v1/members/bad%20id!"), 400)
    refused(get(url, "/v1/members/" + "a" * 65), 422)
    refused(get(url, "/v1/members", limit=0), 422)
    refused(get(url, "/v1/members", limit=10**6), 422)


def test_account_identity(served: tuple[Consortium, str]) -> None:
    c, url = served
    alice = c.addr("alice")
    refused(get(url, f"/v1/accounts/{alice}/identity"), 404, "NOT_FOUND")
    c.register("alice")
    doc = get(url, f"/v1/accounts/{alice}/identity").json()
    assert doc["member"] == "bank" and doc["kyc"] == 2 and doc["status"] == "active"
    assert doc["commitment"] == c.commit("alice").hex()
    assert doc["active"] is True and doc["why_not"] == "" and doc["roles"] == []
    assert doc["key"] == c.keys["alice"].public_key.hex() and doc["serial"] > 0
    assert len(doc["issuer"]) == 64
    c.ok("admin", "account.freeze", {"account": alice, "reason": "test"})
    doc = get(url, f"/v1/accounts/{alice}/identity").json()
    assert doc["status"] == "frozen" and doc["active"] is False
    assert "frozen" in doc["why_not"]
    admin = get(url, f"/v1/accounts/{c.addr('admin')}/identity").json()
    assert admin["roles"] == ["admin", "registrar"] and admin["issuer"] == ""
    refused(get(url, "/v1/accounts/xyz/identity"), 400)
    refused(get(url, f"/v1/accounts/{alice.upper()}/identity"), 400)
    refused(get(url, "/v1/accounts/" + "a" * 65 + "/identity"), 422)


def test_claims(served: tuple[Consortium, str]) -> None:
    c, url = served
    bob = c.addr("bob")
    assert get(url, f"/v1/accounts/{bob}/claims").json()["claims"] == []
    c.register("bob")
    c.vote_through("admin", "claim.topic", topic="jurisdiction", issuers=[c.addr("broker")])
    c.vote_through("admin", "claim.topic", topic="kyc", issuers=[c.addr("broker")])
    c.ok("broker", "claim.issue", {"subject": bob, "topic": "jurisdiction", "value": "CN"})
    expires = get(url, f"/v1/accounts/{bob}/claims").json()["time"] + 10_000
    c.ok("broker", "claim.issue", {"subject": bob, "topic": "kyc", "value": 3,
                                   "expires_ms": expires})
    for i in range(30):  # blocks until the kyc claim has expired (the test clock ticks)
        answer = get(url, f"/v1/accounts/{bob}/claims").json()
        if answer["time"] >= expires:
            break
        c.issue(f"TICK{i}", 1, to="issuer")
    claims = {cl["topic"]: cl for cl in answer["claims"]}
    assert claims["jurisdiction"] == {
        "topic": "jurisdiction", "value": "CN", "issuer": c.addr("broker"),
        "height": claims["jurisdiction"]["height"], "expires_ms": 0, "expired": False,
        "trusted": True, "valid": True}
    assert claims["kyc"]["value"] == 3 and claims["kyc"]["expired"] is True
    assert claims["kyc"]["valid"] is False and claims["kyc"]["trusted"] is True
    assert answer["time"] >= expires
    refused(get(url, "/v1/accounts/not-an-address/claims"), 400)
    refused(get(url, f"/v1/accounts/{bob}/claims", limit=257), 422)


def test_proposals_and_committee(served: tuple[Consortium, str]) -> None:
    c, url = served
    committee = get(url, "/v1/committee").json()
    assert committee["total_weight"] == 4 and len(committee["seats"]) == 4
    assert all(s["weight"] == 1 and s["active"] for s in committee["seats"])
    assert committee["actions"]["policy.set"] == {"participation": 5001, "win": 5001}
    assert {"member.admit", "claim.topic", "role.grant"} <= set(committee["actions"])

    carol = c.addr("carol")
    c.register("carol")
    proposal = c.ok("admin", "gov.propose", {"action": "role.grant", "account": carol,
                                             "role": "issuer"}).tx
    listed = get(url, "/v1/proposals").json()
    (mine,) = [p for p in listed if p["id"] == proposal]
    assert mine["status"] == "open" and mine["action"] == "role.grant"
    assert mine["args"] == {"account": carol, "role": "issuer"}
    assert mine["tally"] == {"for": 1, "against": 0, "total": 4}
    assert mine["votes"] == {c.addr("admin"): "for"}
    assert mine["vote_policy"] == {"participation": 5001, "win": 5001}
    assert get(url, f"/v1/proposals/{proposal}").json() == mine
    c.ok("broker", "gov.vote", {"proposal": proposal, "vote": "against"})
    c.ok("custodian", "gov.vote", {"proposal": proposal, "vote": "for"})  # 3 of 4 voted
    done = get(url, f"/v1/proposals/{proposal}").json()
    assert done["status"] == "passed" and done["vote_policy"] is None
    assert done["tally"] == {"for": 2, "against": 1, "total": 4}
    assert proposal not in [p["id"] for p in get(url, "/v1/proposals").json()]
    assert proposal in [p["id"] for p in get(url, "/v1/proposals", status="all").json()]
    refused(get(url, f"/v1/proposals/{ZERO_ID}"), 404, "NOT_FOUND")
    refused(get(url, "/v1/proposals/not-hex"), 400)
    refused(get(url, "/v1/proposals/" + "ab" * 65), 422)
    refused(get(url, "/v1/proposals", status="closed"), 422)
    refused(get(url, "/v1/proposals", limit=0), 422)


def test_policies_and_may(served: tuple[Consortium, str]) -> None:
    c, url = served
    issue = get(url, "/v1/policies/tx:asset.issue").json()
    assert issue == {"resource": "tx:asset.issue", "kind": "signer", "stored": False,
                     "record": {"allow": {"role": "issuer"}},
                     "describe": "the role issuer"}
    transfer = get(url, "/v1/policies/tx:custody.transfer").json()
    assert transfer["record"] == {"allow": {"any": True}} and not transfer["stored"]
    vote = get(url, "/v1/policies/gov:policy.set").json()
    assert vote["kind"] == "vote" and vote["record"] == {"participation": 5001, "win": 5001}
    assert "describe" not in vote
    c.vote_through("admin", "policy.set", resource="tx:document.attest",
                   deny=[c.addr("lender")])
    stored = get(url, "/v1/policies/tx:document.attest").json()
    assert stored["stored"] and stored["record"]["deny"] == [c.addr("lender")]
    refused(get(url, "/v1/policies/gov:no.such"), 404, "NOT_FOUND")
    refused(get(url, "/v1/policies/bogus"), 400)
    refused(get(url, "/v1/policies/tx:gov.vote"), 400)
    refused(get(url, "/v1/policies/tx:" + "a" * 200), 422)

    yes = get(url, "/v1/may", account=c.addr("issuer"), resource="tx:asset.issue").json()
    assert yes["allowed"] is True and "satisfies" in yes["reason"]
    no = get(url, "/v1/may", account=c.addr("admin"), resource="tx:asset.issue").json()
    assert no["allowed"] is False and "the role issuer" in no["reason"]
    stranger = get(url, "/v1/may", account="ab" * 20, resource="tx:custody.transfer").json()
    assert stranger["allowed"] is False and "not registered" in stranger["reason"]
    refused(get(url, "/v1/may", account=c.addr("issuer")), 422)
    refused(get(url, "/v1/may", account="xyz", resource="tx:asset.issue"), 400)
    refused(get(url, "/v1/may", account=c.addr("issuer"), resource="gov:policy.set"), 400)
    refused(get(url, "/v1/may", account=c.addr("issuer"), resource="x" * 201), 422)


def test_openapi_documents_the_identity_routes(served: tuple[Consortium, str]) -> None:
    _, url = served
    doc = get(url, "/openapi.json").json()
    for path in ["/v1/members", "/v1/members/{member_id}", "/v1/accounts/{address}/identity",
                 "/v1/accounts/{address}/claims", "/v1/proposals",
                 "/v1/proposals/{proposal_id}", "/v1/policies/{resource}", "/v1/may",
                 "/v1/committee"]:
        op = doc["paths"][path]["get"]
        assert op["responses"]["200"]["content"]["application/json"]["schema"], path
        assert {"400", "422"} <= set(op["responses"]), path


def test_sdk_reads(served: tuple[Consortium, str]) -> None:
    c, url = served
    with TallyClient(url) as client:
        assert [m.id for m in client.members()] == ["bank", "broker", "custody", "regulator"]
        assert client.member("bank").ca_certificates[0].pem
        assert client.identity(c.addr("admin")).member == "bank"
        with pytest.raises(NotFound):
            client.identity("cd" * 20)
        with pytest.raises(TallyError) as exc:
            client.identity("not an address?")
        assert exc.value.code == "INVALID_REQUEST"
        with pytest.raises(NotFound):  # quoted: a slash reaches no other route
            client.identity("../../status")
        assert client.policy("tx:asset.issue").record == {"allow": {"role": "issuer"}}
        assert client.may(c.addr("issuer"), "tx:asset.issue").allowed
        assert client.committee().total_weight == 4
        assert client.claims(c.addr("admin")).claims == []
        assert isinstance(client.proposals(status="all"), list)

    async def read() -> tuple[int, bool]:
        async with AsyncTallyClient(url) as client:
            committee = await client.committee()
            verdict = await client.may(c.addr("admin"), "tx:asset.issue")
            return committee.total_weight, verdict.allowed

    assert asyncio.run(read()) == (4, False)


# --- the CLI --------------------------------------------------------------------------

def tally(*args: str | Path, url: str | None = None) -> subprocess.CompletedProcess[str]:
    extra = ["--url", url] if url else []
    return subprocess.run([sys.executable, "-m", "tally", *map(str, args), *extra],
                          capture_output=True, text=True, timeout=120)


def answer(run: subprocess.CompletedProcess[str]) -> Any:
    assert run.returncode == 0, run.stderr + run.stdout
    return json.loads(run.stdout)


def test_cli_end_to_end(served: tuple[Consortium, str], tmp_path: Path) -> None:
    """A registrar registers a customer whose key was certified by the member's CA with
    the openssl commands of docs/identity.md; the committee grants it a role by votes
    cast from the CLI; policy, may, claims and a disclosure checked against the chain."""
    c, url = served
    for name in ("admin", "broker", "custodian"):
        keyfiles.save(tmp_path / f"{name}.json", c.keys[name])
    resync(c, "admin", "broker", "custodian")
    ca = c.cas["bank"]

    # the customer's key, certified by the bank's CA (docs/identity.md, intl)
    assert tally("keys", "new", "dave", "--out", tmp_path / "dave.json").returncode == 0
    pub = tally("keys", "show", "--pem", tmp_path / "dave.json")
    assert pub.returncode == 0 and pub.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    (tmp_path / "dave.pub.pem").write_text(pub.stdout)
    (tmp_path / "leaf.ext").write_text("keyUsage=critical,digitalSignature\n")
    openssl("req", "-new", "-key", ca.key, "-subj", "/O=Bank A/CN=Dave Li", "-out",
            "dave.csr", cwd=tmp_path)
    openssl("x509", "-req", "-in", "dave.csr", "-CA", ca.cert, "-CAkey", ca.key,
            "-force_pubkey", "dave.pub.pem", "-days", "365", "-extfile", "leaf.ext",
            "-out", "dave.pem", cwd=tmp_path)
    dave = keyfiles.load(tmp_path / "dave.json").address

    # the member's record of Dave, and the commitment to register
    (tmp_path / "dave.record.json").write_text(json.dumps(
        {"name": "Dave Li", "id_type": "resident_id", "id_number": "110101199001010077"}))
    made = tally("account", "disclose", "--record", tmp_path / "dave.record.json",
                 "--out", tmp_path / "dave.disclosure.json")
    assert made.returncode == 0, made.stderr
    disclosure = json.loads((tmp_path / "dave.disclosure.json").read_text())
    assert disclosure["commitment"] == commitment.commit(
        c.suite, disclosure["record"], bytes.fromhex(disclosure["salt"])).hex()
    again = answer(tally("account", "disclose", "--record", tmp_path / "dave.record.json",
                         "--salt", disclosure["salt"]))
    assert again == disclosure

    receipt = answer(tally("account", "register", tmp_path / "dave.pem", "--commitment",
                           disclosure["commitment"], "--kyc", "2", "--key",
                           tmp_path / "admin.json", url=url))
    assert receipt["code"] == "OK"
    shown = answer(tally("account", "show", dave, url=url))
    assert shown["member"] == "bank" and shown["active"] is True
    assert shown["commitment"] == disclosure["commitment"]

    # the disclosure checks against the chain; a tampered one does not
    checked = answer(tally("account", "check-disclosure", tmp_path / "dave.disclosure.json",
                           "--account", dave, url=url))
    assert checked["matches"] is True
    forged = dict(disclosure, record={**disclosure["record"], "name": "Eve"})
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    bad = tally("account", "check-disclosure", tmp_path / "forged.json", "--account", dave,
                url=url)
    assert bad.returncode == 1 and "do not make this commitment" in bad.stderr

    # policy: Dave may not issue, until the committee grants him the role
    shown_policy = answer(tally("policy", "show", "tx:asset.issue", url=url))
    assert shown_policy["describe"] == "the role issuer"
    may = tally("policy", "may", dave, "tx:asset.issue", url=url)
    assert may.returncode == 1 and '"allowed": false' in may.stdout
    proposed = answer(tally("proposal", "propose", "role.grant", "--arg", f"account={dave}",
                            "--arg", "role=issuer", "--key", tmp_path / "admin.json",
                            url=url))
    proposal = proposed["proposal"]
    assert proposed["status"] == "open"
    listed = answer(tally("proposal", "list", url=url))
    assert proposal in [p["id"] for p in listed]
    voted = answer(tally("proposal", "vote", proposal, "for", "--key",
                         tmp_path / "broker.json", url=url))
    assert voted["status"] == "open"
    voted = answer(tally("proposal", "vote", proposal, "for", "--key",
                         tmp_path / "custodian.json", url=url))
    assert voted["status"] == "passed"
    assert voted["tally"] == {"for": 3, "against": 0, "total": 4}
    assert tally("policy", "may", dave, "tx:asset.issue", url=url).returncode == 0
    assert answer(tally("proposal", "show", proposal, url=url))["status"] == "passed"

    # a committee action of its own group, then withdrawn
    topic = answer(tally("claim", "topic", "accredited", "--issuer", c.addr("broker"),
                         "--key", tmp_path / "admin.json", url=url))
    withdrawn = tally("proposal", "withdraw", topic["proposal"], "--key",
                      tmp_path / "admin.json", url=url)
    assert withdrawn.returncode == 0, withdrawn.stderr
    assert answer(tally("claim", "list", dave, url=url))["claims"] == []
    members = answer(tally("member", "list", url=url))
    assert len(members) == 4

    # refusals: a malformed address, a vote by a non-seat, an unknown proposal
    malformed = tally("account", "show", "xyz", url=url)
    assert malformed.returncode == 1 and "INVALID_REQUEST" in malformed.stderr
    not_a_seat = tally("proposal", "vote", proposal, "for", "--key", tmp_path / "dave.json",
                       url=url)
    assert not_a_seat.returncode == 1 and "refused" in not_a_seat.stderr
    assert tally("proposal", "show", ZERO_ID, url=url).returncode == 1
    assert tally("account", "register", tmp_path / "missing.pem", "--commitment", "00" * 32,
                 "--kyc", "1", "--key", tmp_path / "admin.json", url=url).returncode == 2
    resync(c, "admin", "broker", "custodian")


@pytest.mark.parametrize("group", ["member", "account", "claim", "policy", "proposal"])
def test_cli_groups_have_help_with_examples(group: str) -> None:
    from tally.cli.main import app

    runner = CliRunner()
    shown = runner.invoke(app, [group, "--help"])
    assert shown.exit_code == 0 and "Example" in shown.output, shown.output
    for command in ([c.name for c in _commands(group)]):
        one = runner.invoke(app, [group, command, "--help"])
        assert one.exit_code == 0 and "Example" in one.output, (group, command, one.output)


def _commands(group: str) -> list:
    from tally.cli.identity import GROUPS

    return dict(GROUPS)[group].registered_commands


def docs_openssl(suite: str) -> str:
    """docs/identity.md's openssl commands for ``suite``: the first (intl) or second (gm)
    shell block after "Making a CA"."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "identity.md").read_text()
    section = docs[docs.index("Making a CA"):docs.index("## Real-name accounts")]
    blocks = [b.split("```", 1)[0] for b in section.split("```sh\n")[1:]]
    return blocks[{"intl": 0, "gm": 1}[suite]]


@pytest.mark.parametrize("suite", ["intl", "gm"])
def test_docs_openssl_commands_certify_a_tally_key(suite: str, tmp_path: Path) -> None:
    """docs/identity.md's commands, as written there, make a certificate Tally verifies
    for the key ``tally keys show --pem`` printed."""
    script = docs_openssl(suite)
    assert "-force_pubkey alice.pub.pem" in script and "tally keys show --pem" in script
    (tmp_path / "tally").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m tally "$@"\n')
    (tmp_path / "tally").chmod(0o755)
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"})
    assert run.returncode == 0, run.stderr
    verified = certs.verify_chain(
        certs.parse_certificate((tmp_path / "alice.pem").read_bytes()), [],
        [certs.parse_certificate((tmp_path / "ca.pem").read_bytes())],
        at_ms=int(time.time() * 1000) + 60_000, suite_name=suite, usage="account")
    assert verified.public_key == keyfiles.load(tmp_path / "alice.json").public_key
