"""The ``tally`` command: the demo end to end, and its refusals of bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def tally(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tally", *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, COLUMNS="200"))


@pytest.mark.parametrize("suite", ["intl", "gm"])
def test_demo_runs_the_custody_scenario_and_verifies_evidence(suite: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = tally("demo", "--suite", suite, "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    text = result.stdout
    assert text.count("committed in block") == 12
    assert "refused (INSUFFICIENT_UNITS)" in text and "refused (UNAUTHORISED)" in text
    assert "held 7,500, pledged 0, frozen 0, free 7,500" in text
    assert "✓ rejected" in text
    bundle = out / "evidence-alice-to-bob.json"
    verified = tally("evidence", "verify", str(bundle), "--json")
    assert verified.returncode == 0, verified.stderr
    verdict = json.loads(verified.stdout)
    assert verdict["valid"] and verdict["event"]["quantity"] == 2500


def test_keys_new_and_show(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    made = tally("keys", "new", "bank-a", "--out", str(path), "--suite", "gm")
    assert made.returncode == 0, made.stderr
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    shown = json.loads(tally("keys", "show", str(path)).stdout)
    assert shown["name"] == "bank-a" and shown["suite"] == "gm"
    assert "private_key" not in shown
    again = tally("keys", "new", "bank-a", "--out", str(path))
    assert again.returncode == 1 and "refusing to overwrite" in again.stderr
    bad_name = tally("keys", "new", "no spaces allowed", "--out", str(tmp_path / "x.json"))
    assert bad_name.returncode == 1
    doc = json.loads(path.read_text())
    doc["public_key"] = "00" + doc["public_key"][2:]
    path.write_text(json.dumps(doc))
    assert tally("keys", "show", str(path)).returncode == 1


def test_init_refuses_to_overwrite_a_chain(tmp_path: Path) -> None:
    assert tally("init", "--home", str(tmp_path / "h")).returncode == 0
    again = tally("init", "--home", str(tmp_path / "h"))
    assert again.returncode == 1 and "already exists" in again.stderr
    assert tally("init", "--home", str(tmp_path / "g"), "--suite", "rot13").returncode == 1


def test_net_init_writes_the_chosen_block_pause_and_refuses_a_bad_one(tmp_path: Path) -> None:
    net = tmp_path / "net"
    bad = tally("net", "init", "--dir", str(net), "--validators", "2",
                "--timeout-commit", "fast")
    assert bad.returncode == 2 and "300ms or 1s" in bad.stderr
    assert not net.exists()  # nothing written
    ok = tally("net", "init", "--dir", str(net), "--validators", "2", "--timeout-commit", "750ms")
    assert ok.returncode == 0, ok.stderr
    configs = sorted(net.glob("*/config/config.toml"))
    assert len(configs) == 2
    for config in configs:
        assert 'timeout_commit = "750ms"' in config.read_text()


def test_send_refuses_bad_payloads_and_unreachable_nodes(tmp_path: Path) -> None:
    key = tmp_path / "k.json"
    tally("keys", "new", "x", "--out", str(key))
    not_json = tally("send", "custody.transfer", "{oops", "--key", str(key))
    assert not_json.returncode == 2 and "not JSON" in not_json.stderr
    not_object = tally("send", "custody.transfer", "[1]", "--key", str(key))
    assert not_object.returncode == 2
    no_node = tally("send", "custody.transfer", "{}", "--key", str(key), "--url",
                    "http://127.0.0.1:9")
    assert no_node.returncode != 0
    assert tally("status", "--url", "http://127.0.0.1:9").returncode == 1


def test_help_everywhere() -> None:
    for args in [(), ("keys",), ("node",), ("evidence",), ("evidence", "verify")]:
        result = tally(*args, "--help")
        assert result.returncode == 0 and "Usage" in result.stdout
