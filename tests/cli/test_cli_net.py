"""``fastdicom demo | echo | send | serve`` as users run them."""

from __future__ import annotations

import json
import subprocess
import sys

from fastdicom import synth
from fastdicom.net import StorageSCP


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fastdicom", *args], capture_output=True, text=True, timeout=timeout)


def test_demo():
    r = run("demo", "--slices", "12", "--frames", "6", "-j", "2")
    assert r.returncode == 0, r.stderr
    assert "verified: 13 of 13 objects arrived intact" in r.stdout
    assert "throughput" in r.stdout and "C-STORE latency p95" in r.stdout


def test_echo_send_and_log(tmp_path):
    paths = synth.write_ct_series(str(tmp_path / "src"), 5, rows=16, columns=16)
    (tmp_path / "src" / "notes.txt").write_text("not DICOM")
    with StorageSCP(str(tmp_path / "archive"), port=0) as scp:
        address = f"FASTDICOM@127.0.0.1:{scp.port}"
        r = run("echo", address)
        assert r.returncode == 0 and "status 0x0000" in r.stdout
        r = run("send", str(tmp_path / "src"), "--to", address, "-j", "2", "--log", str(tmp_path / "log.jsonl"))
    assert r.returncode == 1  # the text file is reported as a failure, the rest went
    assert "objects sent         5 of 6" in r.stdout
    lines = [json.loads(line) for line in open(tmp_path / "log.jsonl")]
    assert sorted(x["ok"] for x in lines) == [False] + [True] * 5
    assert {x["path"] for x in lines if x["ok"]} == set(paths)


def test_echo_nobody_listening():
    r = run("echo", "X@127.0.0.1:1", "--timeout", "2")
    assert r.returncode == 2 and "cannot connect" in r.stderr
