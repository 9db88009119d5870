"""Numbers out of range and unknown routes answer a typed error, never a server error
(issue 13: integers above 2^63 in a path or query answered 500 with a traceback)."""

from __future__ import annotations

import httpx
import pytest

from tests.support.chain import Chain

HUGE = str(2**64)

BAD_NUMBERS = [
    f"/v1/blocks/{HUGE}", f"/v1/checkpoints/{HUGE}", f"/v1/evidence/{HUGE}",
    f"/v1/commercial/evidence/{HUGE}", "/v1/blocks/-1",
    f"/v1/events?after={HUGE}", f"/v1/assets/BOND/history?after={HUGE}",
    f"/v1/commercial/events?after={HUGE}", "/v1/events?after=-2",
    f"/v1/proofs/inclusion?index={HUGE}&size=1", f"/v1/proofs/inclusion?index=0&size={HUGE}",
    f"/v1/proofs/consistency?first={HUGE}&second=1",
    f"/v1/contracts/token/source?version={HUGE}",
]


@pytest.mark.parametrize("path", BAD_NUMBERS)
def test_out_of_range_numbers_are_refused_with_a_code(api: tuple[Chain, str], path: str) -> None:
    _, url = api
    response = httpx.get(url + path, timeout=10)
    assert response.status_code == 422, (path, response.status_code, response.text)
    body = response.json()
    assert body["code"] == "INVALID_REQUEST" and body["message"]


def test_the_largest_position_is_a_clean_not_found(api: tuple[Chain, str]) -> None:
    _, url = api
    response = httpx.get(f"{url}/v1/blocks/{2**63 - 1}", timeout=10)
    assert response.status_code == 404 and response.json()["code"] == "NOT_FOUND"


def test_unknown_routes_and_methods_answer_in_the_error_shape(api: tuple[Chain, str]) -> None:
    _, url = api
    missing = httpx.get(f"{url}/v1/no-such-thing", timeout=10)
    assert missing.status_code == 404
    assert missing.json() == {"code": "NOT_FOUND", "message": "Not Found"}
    wrong = httpx.delete(f"{url}/v1/status", timeout=10)
    assert wrong.status_code == 405
    assert wrong.json()["code"] == "INVALID_REQUEST"
