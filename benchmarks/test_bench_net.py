"""Network benchmarks on loopback, side by side: fastdicom, DCMTK, pynetdicom, raw TCP.

Every receiver stores to disk (fastdicom also fsyncs each object before
answering, which DCMTK's storescp and the pynetdicom receiver here do not);
each round starts with an empty archive and checks that every object arrived.
DCMTK comes from Debian's ``dcmtk`` package (ci/setup.sh); "tuned" means
``TCP_NODELAY=1`` in both environments and ``-pdu 131072``.

Run: FASTDICOM_BENCH_DIR=/tmp/bench-series python3 -m pytest benchmarks/test_bench_net.py --benchmark-enable
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import psutil
import pytest

import fastdicom
from fastdicom import synth
from fastdicom.net import store
from tests.net.conftest import free_port, wait_port

pynetdicom = pytest.importorskip("pynetdicom")

SMALL = int(os.environ.get("FASTDICOM_BENCH_SMALL", "2000"))
BIG_FRAMES = int(os.environ.get("FASTDICOM_BENCH_BIG_FRAMES", "512"))  # 512 frames of 1024x1024 int16: 1 GiB


def _dcmtk(name: str) -> str | None:
    path = f"/usr/bin/{name}"
    return path if os.path.exists(path) else None


def _count(folder: str) -> int:
    return sum(1 for _root, _dirs, files in os.walk(folder) for f in files if not f.endswith(".part") and f != "log")


def _bench_dir() -> str:
    return os.environ.get("FASTDICOM_BENCH_DIR") or tempfile.mkdtemp(prefix="fastdicom-bench-")


@pytest.fixture(scope="session")
def small_objects():
    return make_small_objects()


def make_small_objects() -> list[str]:
    """SMALL objects of about 8 KB (written once under the bench folder)."""
    folder = os.path.join(_bench_dir(), f"small{SMALL}")
    if not os.path.isdir(folder) or len(os.listdir(folder)) < SMALL:
        os.makedirs(folder, exist_ok=True)
        study, series, frame = synth.new_uid(), synth.new_uid(), synth.new_uid()
        px = np.zeros((56, 56), dtype="<i2")
        for i in range(SMALL):
            ds = synth.ct_slice(i, study_uid=study, series_uid=series, frame_uid=frame, rows=56, columns=56, pixels=px)
            fastdicom.write(os.path.join(folder, f"S{i:05d}.dcm"), ds)
    return sorted(os.path.join(folder, f) for f in os.listdir(folder))[:SMALL]


@pytest.fixture(scope="session")
def big_object():
    path = os.path.join(_bench_dir(), f"big{BIG_FRAMES}.dcm")
    if not os.path.exists(path):
        px = np.zeros((BIG_FRAMES, 1024, 1024), dtype="<i2")
        px[:, 100:200, 100:200] = 1000
        fastdicom.write(path, synth.enhanced_ct(BIG_FRAMES, rows=1024, columns=1024, pixels=px))
    return [path]


# -- receivers ----------------------------------------------------------------------------------

PYNETDICOM_SCP = r"""
import sys, os
from pynetdicom import AE, AllStoragePresentationContexts, evt
out = sys.argv[2]
def on_store(event):
    with open(os.path.join(out, event.request.AffectedSOPInstanceUID + ".dcm"), "wb") as f:
        f.write(event.encoded_dataset())
    return 0
ae = AE(ae_title="PYSCP")
ae.supported_contexts = AllStoragePresentationContexts
ae.maximum_pdu_size = 0
print("listening", flush=True)
ae.start_server(("127.0.0.1", int(sys.argv[1])), evt_handlers=[(evt.EVT_C_STORE, on_store)])
"""

PYNETDICOM_SCU = r"""
import sys
from pydicom import dcmread
from pynetdicom import AE, StoragePresentationContexts
ae = AE(ae_title="PYSCU")
ae.requested_contexts = StoragePresentationContexts
ae.maximum_pdu_size = 0
assoc = ae.associate("127.0.0.1", int(sys.argv[1]), ae_title=sys.argv[2])
for p in sys.argv[3:]:
    assert assoc.send_c_store(dcmread(p)).Status == 0
assoc.release()
"""


class Receiver:
    def __init__(self, kind: str):
        self.kind = kind
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix=f"fastdicom-recv-{kind}-")
        env = dict(os.environ)
        if kind in ("fastdicom", "fastdicom-sink", "fastdicom-os"):
            cmd = [sys.executable, "-m", "fastdicom", "serve", "--port", str(self.port), "--dir", self.dir]
            cmd += ["--host", "127.0.0.1", "-q"] + (["--sink"] if kind == "fastdicom-sink" else [])
            cmd += ["--durability", "os"] if kind == "fastdicom-os" else []  # the page cache only, like storescp
            self.ae = "FASTDICOM"
        elif kind.startswith("dcmtk"):
            cmd = [_dcmtk("storescp"), "-od", self.dir, "-aet", "DCMTK", "--fork"]
            if kind == "dcmtk-tuned":
                cmd += ["-pdu", "131072"]
                env["TCP_NODELAY"] = "1"
            cmd.append(str(self.port))
            self.ae = "DCMTK"
        elif kind == "pynetdicom":
            cmd = [sys.executable, "-c", PYNETDICOM_SCP, str(self.port), self.dir]
            self.ae = "PYSCP"
        else:
            raise ValueError(f"unknown receiver {kind!r}")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        wait_port(self.port)
        self.ps = psutil.Process(self.proc.pid)

    @property
    def address(self) -> str:
        return f"{self.ae}@127.0.0.1:{self.port}"

    def clear(self) -> None:
        for name in os.listdir(self.dir):
            p = os.path.join(self.dir, name)
            if name == ".incoming":
                continue
            shutil.rmtree(p) if os.path.isdir(p) else os.unlink(p)

    def stop(self) -> None:
        try:
            children = self.ps.children(recursive=True)
        except psutil.Error:
            children = []
        for child in children:
            try:
                child.kill()
            except psutil.Error:  # already gone (DCMTK's forked children exit on their own)
                pass
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def _send(sender: str, paths: list[str], rcv: Receiver) -> None:
    if sender.startswith("fastdicom"):
        jobs = int(sender.split("-j")[1]) if "-j" in sender else 4
        report = store(paths, rcv.address, associations=jobs, progress=False)
        assert not report.failed, report.failures_by_status()
        return
    env = dict(os.environ)
    if sender.startswith("dcmtk"):
        cmd = [_dcmtk("storescu"), "-aec", rcv.ae]
        if sender == "dcmtk-tuned":
            cmd += ["-pdu", "131072"]
            env["TCP_NODELAY"] = "1"
        folder = os.path.dirname(paths[0])
        cmd += ["+sd", "127.0.0.1", str(rcv.port), folder] if len(paths) > 500 else ["127.0.0.1", str(rcv.port), *paths]
    else:
        cmd = [sys.executable, "-c", PYNETDICOM_SCU, str(rcv.port), rcv.ae, *paths]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]


def _wait_count(rcv: Receiver, n: int) -> bool:
    if rcv.kind == "fastdicom-sink":  # nothing is stored; every response was checked by the sender
        return True
    end = time.time() + 30
    while time.time() < end:
        if _count(rcv.dir) >= n:
            return True
        time.sleep(0.01)
    return False


def _pair(benchmark, sender: str, receiver: str, paths: list[str], rounds: int) -> None:
    if "dcmtk" in (sender.split("-")[0], receiver.split("-")[0]) and _dcmtk("storescp") is None:
        pytest.skip("DCMTK not installed")
    rcv = Receiver(receiver)
    try:
        peak = [0]

        def run():
            _send(sender, paths, rcv)
            assert _wait_count(rcv, len(paths))  # DCMTK's storescp may finish writing after the last response
            peak[0] = max(peak[0], rcv.ps.memory_info().rss)

        benchmark.pedantic(run, setup=rcv.clear, rounds=rounds, warmup_rounds=0)
        size = sum(os.path.getsize(p) for p in paths)
        med = benchmark.stats.stats.median
        benchmark.extra_info["MB/s"] = round(size / 1e6 / med, 1)
        benchmark.extra_info["objects/s"] = round(len(paths) / med, 1)
        benchmark.extra_info["correct"] = receiver == "fastdicom-sink" or _count(rcv.dir) == len(paths)
        if receiver.startswith("fastdicom"):
            benchmark.extra_info["receiver_rss_mb"] = round(peak[0] / 2**20, 1)
    finally:
        rcv.stop()


def _raw_tcp(benchmark, paths: list[str]) -> None:
    """The physical limit: the same bytes over one loopback TCP connection, received and discarded."""
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    got = [0]

    def sink():
        while True:
            conn, _ = srv.accept()
            if conn is None:
                return
            buf = bytearray(1 << 20)
            with conn:
                while True:
                    n = conn.recv_into(buf)
                    if not n:
                        break
                    got[0] += n

    threading.Thread(target=sink, daemon=True).start()

    def run():
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for p in paths:
                with open(p, "rb") as f:
                    s.sendfile(f)

    benchmark.pedantic(run, rounds=5, warmup_rounds=1)
    size = sum(os.path.getsize(p) for p in paths)
    benchmark.extra_info["MB/s"] = round(size / 1e6 / benchmark.stats.stats.median, 1)
    benchmark.extra_info["correct"] = True
    srv.close()


SERIES_PAIRS = [
    ("fastdicom-j1", "fastdicom"),
    ("fastdicom-j2", "fastdicom"),
    ("fastdicom-j4", "fastdicom"),
    ("fastdicom-j8", "fastdicom"),
    ("dcmtk", "dcmtk"),
    ("dcmtk-tuned", "dcmtk-tuned"),
    ("pynetdicom", "pynetdicom"),
    ("fastdicom-j4", "dcmtk-tuned"),
    ("dcmtk-tuned", "fastdicom"),
    # Without the disk: the receiver checks and discards (fastdicom serve --sink).
    ("fastdicom-j1", "fastdicom-sink"),
    ("fastdicom-j4", "fastdicom-sink"),
    ("dcmtk-tuned", "fastdicom-sink"),
]


@pytest.mark.benchmark(group="net-series-300")
@pytest.mark.parametrize("sender,receiver", SERIES_PAIRS, ids=[f"{s}->{r}" for s, r in SERIES_PAIRS])
def test_series(benchmark, ct_series, sender, receiver):
    rounds = 1 if sender in ("dcmtk", "pynetdicom") else 3
    _pair(benchmark, sender, receiver, ct_series, rounds)


@pytest.mark.benchmark(group="net-series-300")
def test_series_raw_tcp(benchmark, ct_series):
    _raw_tcp(benchmark, ct_series)


SMALL_PAIRS = [
    ("fastdicom-j4", "fastdicom"),
    ("fastdicom-j8", "fastdicom"),
    ("dcmtk-tuned", "dcmtk-tuned"),
    ("fastdicom-j4", "fastdicom-sink"),
]


@pytest.mark.benchmark(group="net-small-objects")
@pytest.mark.parametrize("sender,receiver", SMALL_PAIRS, ids=[f"{s}->{r}" for s, r in SMALL_PAIRS])
def test_small_objects(benchmark, small_objects, sender, receiver):
    _pair(benchmark, sender, receiver, small_objects, 3)


@pytest.mark.benchmark(group="net-1gb-object")
@pytest.mark.parametrize(
    "sender,receiver",
    [("fastdicom-j1", "fastdicom"), ("fastdicom-j1", "fastdicom-sink")],
    ids=["fastdicom-j1->fastdicom", "fastdicom-j1->fastdicom-sink"],
)
def test_big_object(benchmark, big_object, sender, receiver):
    _pair(benchmark, sender, receiver, big_object, 3)


@pytest.mark.benchmark(group="net-1gb-object")
def test_big_object_raw_tcp(benchmark, big_object):
    _raw_tcp(benchmark, big_object)


@pytest.mark.benchmark(group="net-disk-limit")
def test_disk_sync_bandwidth(benchmark, ct_series):
    """The physical limit of a durable receiver: write and fsync each file of the series, then rename."""
    folder = tempfile.mkdtemp(prefix="fastdicom-disk-")
    blobs = [open(p, "rb").read() for p in ct_series]

    def run():
        for i, b in enumerate(blobs):
            tmp = os.path.join(folder, f"{i}.part")
            with open(tmp, "wb") as f:
                f.write(b)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, os.path.join(folder, f"{i}.dcm"))

    try:
        benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    size = sum(len(b) for b in blobs)
    benchmark.extra_info["MB/s"] = round(size / 1e6 / benchmark.stats.stats.median, 1)
    benchmark.extra_info["correct"] = True
