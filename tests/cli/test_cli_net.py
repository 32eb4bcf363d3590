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


def test_transcode_cli(tmp_path):
    import numpy as np

    import fastdicom

    paths = synth.write_ct_series(str(tmp_path / "src"), 4, rows=16, columns=16)
    r = run("transcode", str(tmp_path / "src"), "--to", "rle", "-o", str(tmp_path / "rle"), "-j", "2")
    assert r.returncode == 0, r.stderr
    assert "4 of 4 files written as 1.2.840.10008.1.2.5" in r.stdout
    r = run("transcode", str(tmp_path / "rle"), "--to", "ImplicitVRLittleEndian", "-o", str(tmp_path / "back"))
    assert r.returncode == 0, r.stderr
    for p in paths:
        name = p.split("/")[-1]
        a = fastdicom.read(p).pixel_array
        assert fastdicom.read(tmp_path / "rle" / name).transfer_syntax == "1.2.840.10008.1.2.5"
        back = fastdicom.read(tmp_path / "back" / name)
        assert back.transfer_syntax == "1.2.840.10008.1.2" and np.array_equal(back.pixel_array, a)
    r = run("transcode", str(tmp_path / "src"), "--to", "nonsense", "-o", str(tmp_path / "x"))
    assert r.returncode == 2
