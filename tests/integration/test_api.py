"""The HTTP API and the SDK, against a real server on a loopback port."""

from __future__ import annotations

import base64
import json
import threading
import time

import cbor2
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tally.errors import Unavailable, VerificationFailed
from tally.log.merkle import leaf_hash, verify_consistency, verify_inclusion
from tally.sdk import ApiError, NodeUnreachable, StateProof, TallyClient, verify_holding
from tests.support.api import free_port


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def post_tx(url: str, raw: bytes | str, **params) -> httpx.Response:
    body = {"tx": raw if isinstance(raw, str) else b64(raw)}
    return httpx.post(f"{url}/v1/txs", json=body, params=params, timeout=30)


def test_openapi_document_lists_the_api(api) -> None:
    _, url = api
    doc = httpx.get(f"{url}/openapi.json").json()
    for path in ["/v1/txs", "/v1/txs/batch", "/v1/txs/{tx_id}", "/v1/blocks/{height}",
                 "/v1/assets/{asset}", "/v1/assets/{asset}/history", "/v1/proofs/state",
                 "/v1/proofs/inclusion", "/v1/proofs/consistency", "/v1/evidence/{event_index}",
                 "/v1/events/stream", "/v1/checkpoints/{height}", "/v1/members",
                 "/v1/members/{member_id}", "/v1/accounts/{address}/identity",
                 "/v1/accounts/{address}/claims", "/v1/proposals",
                 "/v1/proposals/{proposal_id}", "/v1/policies/{resource}", "/v1/may",
                 "/v1/committee"]:
        assert path in doc["paths"], path


def test_openapi_document_describes_every_response(api) -> None:
    """Every route answers a documented schema, and documents its errors as ErrorModel."""
    _, url = api
    doc = httpx.get(f"{url}/openapi.json").json()
    error_ref = "#/components/schemas/ErrorModel"
    assert set(doc["components"]["schemas"]["ErrorModel"]["properties"]) >= {"code", "message"}
    checked = 0
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            assert method in ("get", "post"), (path, method)
            ok = op["responses"].get("200") or op["responses"].get("202")
            assert ok, (path, method)
            schemas = [c["schema"] for c in ok.get("content", {}).values()]
            assert schemas and all(schemas), f"{method} {path} has no response schema"
            errors = {s: r for s, r in op["responses"].items() if s.startswith("4")}
            assert errors, f"{method} {path} documents no error"
            for status, answer in errors.items():
                ref = answer["content"]["application/json"]["schema"].get("$ref")
                assert ref == error_ref, (path, method, status)
            checked += 1
    assert checked >= 25
    txs = doc["paths"]["/v1/txs"]["post"]["responses"]
    assert {"400", "413", "422", "503"} <= set(txs)
    assert "404" in doc["paths"]["/v1/blocks/{height}"]["get"]["responses"]


def test_submit_and_read_back(api) -> None:
    chain, url = api
    raw = chain.sign("issuer", "asset.issue", {"asset": "BOND", "class": "security",
                                               "name": "Bond", "quantity": 100,
                                               "to": chain.addr("alice")})
    receipt = post_tx(url, raw).json()
    assert receipt["code"] == "OK" and receipt["events"] == [0]
    tx = httpx.get(f"{url}/v1/txs/{receipt['tx']}").json()
    assert tx["kind"] == "asset.issue" and tx["sender"] == chain.addr("issuer")
    assert tx["events"][0]["to"] == chain.addr("alice")
    block = httpx.get(f"{url}/v1/blocks/{receipt['height']}").json()
    assert block["txs"] == [receipt["tx"]]
    assert "— validator-0 " in block["checkpoint"]
    asset = httpx.get(f"{url}/v1/assets/BOND").json()
    assert asset["holders"] == {chain.addr("alice"): {"q": 100, "p": 0, "f": 0}}
    history = httpx.get(f"{url}/v1/assets/BOND/history").json()
    assert [e["type"] for e in history] == ["asset.issue"]
    assert httpx.get(f"{url}/v1/accounts/{chain.addr('issuer')}").json()["nonce"] == 1


def test_failed_execution_is_a_receipt_not_an_http_error(api) -> None:
    chain, url = api
    raw = chain.sign("alice", "asset.issue", {"asset": "X", "class": "other", "name": "x",
                                              "quantity": 1})
    response = post_tx(url, raw)
    assert response.status_code == 200
    assert response.json()["code"] == "UNAUTHORISED"


@pytest.mark.parametrize("payload, status, code", [
    ({"tx": "***not base64***"}, 400, "TX_MALFORMED"),
    ({"tx": b64(b"\xff\x00garbage")}, 400, "TX_MALFORMED"),
    ({"tx": 12}, 422, "INVALID_REQUEST"),
    ({}, 422, "INVALID_REQUEST"),
])
def test_malformed_submissions(api, payload, status, code) -> None:
    _, url = api
    response = httpx.post(f"{url}/v1/txs", json=payload)
    assert response.status_code == status
    assert response.json()["code"] == code


def test_unsigned_replayed_and_wrong_chain_submissions(api) -> None:
    chain, url = api
    chain.issue("BOND", 10, to="alice")
    raw = chain.sign("alice", "custody.transfer", {"asset": "BOND", "to": chain.addr("bob"),
                                                   "quantity": 1})
    body, _ = cbor2.loads(raw)
    unsigned = cbor2.dumps([body, b""], canonical=True)
    assert post_tx(url, unsigned).json()["code"] == "TX_BAD_SIGNATURE"
    assert post_tx(url, raw).json()["code"] == "OK"
    replay = post_tx(url, raw)
    assert replay.status_code == 400 and replay.json()["code"] == "TX_NONCE_REPLAYED"
    other = chain.sign("alice", "custody.transfer", {"asset": "BOND", "to": chain.addr("bob"),
                                                     "quantity": 1}, chain="elsewhere")
    assert post_tx(url, other).json()["code"] == "TX_WRONG_CHAIN"
    assert chain.node.reader.holding("BOND", chain.addr("bob"))["q"] == 1


def test_oversized_request_body(api) -> None:
    chain, url = api
    limit = chain.genesis.params.max_tx_bytes
    response = httpx.post(f"{url}/v1/txs", json={"tx": "A" * (limit * 3)})
    assert response.status_code == 413 and response.json()["code"] == "TX_OVERSIZE"


def test_lookups_of_missing_things_are_404(api) -> None:
    _, url = api
    for path in ["/v1/txs/" + "00" * 32, "/v1/blocks/99", "/v1/assets/NOPE", "/v1/evidence/5",
                 "/v1/checkpoints/7"]:
        response = httpx.get(url + path)
        assert response.status_code == 404, path
        assert response.json()["code"] == "NOT_FOUND"
    bad_hex = httpx.get(f"{url}/v1/txs/not-hex")
    assert bad_hex.status_code == 400 and bad_hex.json()["code"] == "INVALID_REQUEST"


def test_batch_reports_each_transaction(api) -> None:
    chain, url = api
    chain.issue("BOND", 10, to="alice")
    good = chain.sign("alice", "custody.transfer", {"asset": "BOND", "to": chain.addr("bob"),
                                                    "quantity": 2})
    bad = chain.sign("bob", "custody.transfer", {"asset": "BOND", "to": chain.addr("bob"),
                                                 "quantity": 2}, nonce=7)
    results = httpx.post(f"{url}/v1/txs/batch", json={"txs": [b64(good), b64(bad), "%%"],
                                                      "wait": True}, timeout=30).json()["results"]
    assert results[0]["code"] == "OK"
    assert results[1]["code"] == "TX_NONCE_GAP"
    assert results[2]["code"] == "TX_MALFORMED"


def test_proofs_from_the_api_verify_offline(api) -> None:
    chain, url = api
    chain.issue("BOND", 10, to="alice")
    for _ in range(4):
        chain.ok("alice", "custody.transfer", {"asset": "BOND", "to": chain.addr("bob"),
                                               "quantity": 1})
    h = chain.suite.hash
    size = httpx.get(f"{url}/v1/status").json()["log_size"]
    inc = httpx.get(f"{url}/v1/proofs/inclusion", params={"index": 2, "size": size}).json()
    leaf = base64.b64decode(httpx.get(f"{url}/v1/evidence/2").json()["event"]["leaf"])
    verify_inclusion(h, 2, size, leaf_hash(h, leaf), [bytes.fromhex(x) for x in inc["proof"]],
                     bytes.fromhex(inc["root"]))
    con = httpx.get(f"{url}/v1/proofs/consistency", params={"first": 2, "second": size}).json()
    verify_consistency(h, 2, size, [bytes.fromhex(x) for x in con["proof"]],
                       bytes.fromhex(con["first_root"]), bytes.fromhex(con["second_root"]))
    beyond = httpx.get(f"{url}/v1/proofs/inclusion", params={"index": 0, "size": size + 1})
    assert beyond.status_code == 400 and beyond.json()["code"] == "INVALID_REQUEST"


def test_sdk_verifies_reads_and_catches_a_lying_node(api) -> None:
    chain, url = api
    chain.issue("BOND", 10, to="alice")
    with TallyClient(url, genesis_hash=chain.genesis.hash.hex()) as client:
        holding = client.verified_holding("BOND", chain.addr("alice"))
        assert (holding.held, holding.pledged, holding.frozen) == (10, 0, 0)
        assert holding.signers == ["validator-0"]
        absent = client.verified_holding("BOND", chain.addr("bob"))
        assert absent.held == 0
        answer = httpx.get(f"{url}/v1/assets/BOND/holdings/{chain.addr('alice')}").json()
        lie = dict(answer, value_cbor=cbor2.dumps({"f": 0, "p": 0, "q": 11},
                                                  canonical=True).hex())
        genesis = client.genesis()
        with pytest.raises(VerificationFailed, match="state proof is invalid") as info:
            verify_holding(StateProof.model_validate(lie), genesis, "BOND", chain.addr("alice"))
        assert info.value.code == "VERIFICATION_FAILED" and info.value.reason == "root_mismatch"
        assert not isinstance(info.value, Unavailable)
        # Well-formed but altered (one digit more in the signed time line): only the
        # checkpoint's signature can tell.
        forged = answer["checkpoint"].replace("\ntime ", "\ntime 1", 1)
        assert forged != answer["checkpoint"]
        with pytest.raises(VerificationFailed,
                           match="checkpoint does not verify: .*bad_signature"):
            verify_holding(StateProof.model_validate(dict(answer, checkpoint=forged)), genesis,
                           "BOND", chain.addr("alice"))
    with pytest.raises(VerificationFailed, match="pinned genesis"):
        TallyClient(url, genesis_hash="11" * 32).genesis()


def test_sdk_account_flow(api) -> None:
    chain, url = api
    with TallyClient(url) as client:
        issuer = client.account(chain.keys["issuer"])
        alice = client.account(chain.keys["alice"])
        issuer.issue("BOND", asset_class="security", name="Bond", quantity=50,
                     to=alice.address)
        receipt = alice.transfer("BOND", to=chain.addr("bob"), quantity=5, memo="m")
        assert receipt.ok and client.receipt(receipt.tx) == receipt
        with pytest.raises(ApiError) as info:
            alice.transfer("BOND", to=chain.addr("bob"), quantity=500)
        assert info.value.code == "INSUFFICIENT_UNITS"
        assert alice.transfer("BOND", to=chain.addr("bob"), quantity=5).ok  # nonce recovered


def test_event_stream_delivers_committed_events(api) -> None:
    chain, url = api
    received: list[dict] = []

    def listen() -> None:
        with httpx.stream("GET", f"{url}/v1/events/stream", timeout=20) as response:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    received.append(json.loads(line[6:]))
                    if len(received) == 2:
                        return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    time.sleep(0.3)
    chain.issue("BOND", 10, to="alice")
    chain.ok("alice", "custody.transfer", {"asset": "BOND", "to": chain.addr("bob"),
                                           "quantity": 3})
    thread.join(20)
    assert [e["type"] for e in received] == ["asset.issue", "custody.transfer"]
    assert received[1]["quantity"] == 3


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the node's /metrics, keyed by (name, sorted labels)."""
    response = httpx.get(f"{url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples}


def test_metrics_report_what_the_node_did(api) -> None:
    chain, url = api
    chain.issue("BOND", 10, to="alice")
    before = scrape(url)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    ok = chain.sign("alice", "custody.transfer", {"asset": "BOND", "to": chain.addr("bob"),
                                                  "quantity": 3})
    too_much = chain.sign("alice", "custody.transfer", {"asset": "BOND",
                                                        "to": chain.addr("bob"),
                                                        "quantity": 500})
    assert post_tx(url, ok).json()["code"] == "OK"
    assert post_tx(url, ok).json()["code"] == "TX_NONCE_REPLAYED"
    assert post_tx(url, "***").json()["code"] == "TX_MALFORMED"
    assert post_tx(url, too_much).json()["code"] == "INSUFFICIENT_UNITS"  # runs, fails
    gap = chain.sign("bob", "custody.transfer", {"asset": "BOND", "to": chain.addr("bob"),
                                                 "quantity": 1}, nonce=9)
    httpx.post(f"{url}/v1/txs/batch", json={"txs": [b64(gap), "%%"], "wait": True},
               timeout=30)
    after = scrape(url)
    status = httpx.get(f"{url}/v1/status").json()

    assert delta("tally_submissions_total", outcome="accepted") == 2
    assert delta("tally_submissions_total", outcome="TX_NONCE_REPLAYED") == 1
    assert delta("tally_submissions_total", outcome="TX_MALFORMED") == 2
    assert delta("tally_submissions_total", outcome="TX_NONCE_GAP") == 1
    assert delta("tally_transactions_committed_total", outcome="OK") == 1
    assert delta("tally_transactions_committed_total", outcome="INSUFFICIENT_UNITS") == 1
    assert delta("tally_blocks_committed_total") >= 1
    assert after[("tally_height", ())] == status["height"]
    assert after[("tally_log_size", ())] == status["log_size"]
    assert after[("tally_mempool_transactions", ())] == 0
    assert after[("tally_engine_up", ())] == 1
    assert after[("tally_last_block_transactions", ())] == 1
    info = next(k for k in after if k[0] == "tally_node_info")
    assert dict(info[1]) == {"chain_id": chain.genesis.chain_id, "suite": chain.node.suite.name,
                             "engine": "solo", "validator": "validator-0"}
    assert after[("process_cpu_seconds_total", ())] > 0


def test_sdk_reports_an_unreachable_node_as_a_typed_error() -> None:
    """Not httpx's exception: a TallyError with code UNAVAILABLE, which callers that
    submit must treat as 'in doubt' (the request may have been admitted)."""
    with TallyClient(f"http://127.0.0.1:{free_port()}", timeout=2) as client, \
            pytest.raises(NodeUnreachable) as info:
        client.status()
    assert info.value.code == "UNAVAILABLE" and "cannot reach the node" in info.value.message
    assert isinstance(info.value, Unavailable) and isinstance(info.value, ApiError)
