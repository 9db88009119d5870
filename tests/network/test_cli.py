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
    # The consortium: four founders with their own CAs, real-name customers, a fifth
    # member and its node admitted by vote (skip these where openssl is missing).
    assert "all 4 founders checked their entries" in text
    assert text.count("(block ") >= 5 and "Zhang Li (Alice)" in text
    assert "3 of 4 seats, passed" in text and "one of 5 validators cosigning" in text
    # The regulator's scene: alerts from its node, a freeze on the record, the report.
    assert "(large-transfer): custody.transfer of 2500 BOND-2030" in " ".join(text.split())
    assert "bob's transfer refused: ASSET_FROZEN" in text and "interventions" in text
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


@pytest.mark.parametrize(("option", "value", "line"), [
    ("--timeout-commit", "750ms", 'timeout_commit = "750ms"'),
    ("--timeout-propose", "2s", 'timeout_propose = "2s"'),
])
def test_net_init_writes_the_chosen_timeout_and_refuses_a_bad_one(
        tmp_path: Path, option: str, value: str, line: str) -> None:
    net = tmp_path / "net"
    for bad_value in ("fast", "1.5s", "-1s", "300"):
        bad = tally("net", "init", "--dir", str(net), "--validators", "2", option, bad_value)
        assert bad.returncode == 2 and f"{option} {bad_value!r}" in bad.stderr, bad.stderr
        assert "300ms or 1s" in bad.stderr
        assert not net.exists()  # nothing written
    ok = tally("net", "init", "--dir", str(net), "--validators", "2", option, value)
    assert ok.returncode == 0, ok.stderr
    configs = sorted(net.glob("*/config/config.toml"))
    assert len(configs) == 2
    for config in configs:
        assert line in config.read_text()


def test_net_init_waits_for_a_proposal_by_placement(tmp_path: Path) -> None:
    """A stopped validator's heights each cost timeout_propose (decision 0015): short on
    one machine, where a proposal arrives in milliseconds; longer across institutions'
    links, so a slow proposer is not skipped."""
    def propose_timeouts(net: Path) -> set[str]:
        return {x for config in net.glob("*/config/config.toml")
                for x in config.read_text().splitlines() if x.startswith("timeout_propose =")}

    here, there = tmp_path / "here", tmp_path / "there"
    assert tally("net", "init", "--dir", str(here), "--validators", "2").returncode == 0
    assert tally("net", "init", "--dir", str(there),
                 "--hosts", "10.1.0.1,10.1.0.2").returncode == 0
    assert propose_timeouts(here) == {'timeout_propose = "400ms"'}
    assert propose_timeouts(there) == {'timeout_propose = "1s"'}


def test_net_init_on_hosts_writes_a_network_across_machines(tmp_path: Path) -> None:
    """What each host's CometBFT needs: peers by host address, p2p facing the network,
    RPC on loopback, the standard ports unless a host runs two nodes; and a directory that
    still works once copied elsewhere (paths in the manifest are relative)."""
    from tally.net.cometbft.localnet import load_localnet

    net = tmp_path / "net"
    hosts = ["10.1.0.1", "10.1.0.2", "10.1.0.2", "bank-d.example"]
    made = tally("net", "init", "--dir", str(net), "--hosts", ",".join(hosts))
    assert made.returncode == 0, made.stderr
    assert "tally net up --dir" in made.stdout and "--node i" in made.stdout
    moved = tmp_path / "copied"
    net.rename(moved)
    specs = load_localnet(moved)
    assert [s.host for s in specs] == hosts
    assert [s.p2p_port for s in specs] == [26656, 26656, 26666, 26656]
    ids = {s.index: s.node_id for s in specs}
    for s in specs:
        assert Path(s.home) == moved / f"node{s.index}" and Path(s.app_dir).is_dir()
        config = (Path(s.home) / "config" / "config.toml").read_text()
        assert f'laddr = "tcp://0.0.0.0:{s.p2p_port}"' in config
        assert f'laddr = "tcp://127.0.0.1:{s.rpc_port}"' in config  # RPC stays local
        assert f'external_address = "{s.host}:{s.p2p_port}"' in config
        peers = {f"{ids[o.index]}@{o.host}:{o.p2p_port}" for o in specs if o is not s}
        line = next(x for x in config.splitlines() if x.startswith("persistent_peers ="))
        assert set(line.split('"')[1].split(",")) == peers
    assert len(json.loads((moved / "genesis.json").read_text())["validators"]) == 4


@pytest.mark.parametrize(("hosts", "extra", "says"), [
    ("10.1.0.1,10.1.0.2", ["--validators", "3"], "2 hosts given for 3 nodes"),
    ("10.1.0.1,10.1.0.2:26656", [], "without a port"),
    ("10.1.0.1,,10.1.0.3", [], "give a DNS name"),
    ("10.1.0.1,127.0.0.1", [], "other machines cannot reach it"),
    ("10.1.0.1,bad host", [], "give a DNS name"),
])
def test_net_init_refuses_bad_hosts_and_writes_nothing(tmp_path: Path, hosts: str,
                                                        extra: list[str], says: str) -> None:
    net = tmp_path / "net"
    bad = tally("net", "init", "--dir", str(net), "--hosts", hosts, *extra)
    assert bad.returncode == 2 and says in " ".join(bad.stderr.split()), bad.stderr
    assert not net.exists()


def test_net_up_and_down_refuse_a_node_the_network_does_not_have(tmp_path: Path) -> None:
    net = tmp_path / "net"
    assert tally("net", "init", "--dir", str(net), "--validators", "2").returncode == 0
    for command in ("up", "down"):
        bad = tally("net", command, "--dir", str(net), "--node", "2")
        assert bad.returncode == 2 and "no node 2" in bad.stderr, bad.stderr
    assert not list(net.glob("node*/*.pid"))  # nothing was started


def test_send_refuses_bad_payloads_and_unreachable_nodes(tmp_path: Path) -> None:
    key = tmp_path / "k.json"
    assert tally("keys", "new", "x", "--out", str(key)).returncode == 0
    not_json = tally("send", "custody.transfer", "{oops", "--key", str(key))
    assert not_json.returncode == 2 and "not JSON" in not_json.stderr
    not_object = tally("send", "custody.transfer", "[1]", "--key", str(key))
    assert not_object.returncode == 2
    no_node = tally("send", "custody.transfer", "{}", "--key", str(key), "--url",
                    "http://127.0.0.1:9")
    assert no_node.returncode == 1 and "Traceback" not in no_node.stderr, no_node.stderr
    assert "cannot reach the node at http://127.0.0.1:9" in no_node.stderr
    no_status = tally("status", "--url", "http://127.0.0.1:9")
    assert no_status.returncode == 1 and "cannot reach the node" in no_status.stderr
    no_export = tally("evidence", "export", "--event", "0", "--out", str(tmp_path / "b.json"),
                      "--url", "http://127.0.0.1:9")
    assert no_export.returncode == 1 and "Traceback" not in no_export.stderr, no_export.stderr
    assert not (tmp_path / "b.json").exists()


def test_help_everywhere() -> None:
    for args in [(), ("keys",), ("node",), ("evidence",), ("evidence", "verify")]:
        result = tally(*args, "--help")
        assert result.returncode == 0 and "Usage" in result.stdout
