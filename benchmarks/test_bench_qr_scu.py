"""C-GET of the 300-slice CT series from dcmqrscp and Orthanc, side by side: fastdicom's SCU and DCMTK's getscu.

One dcmqrscp (``TCP_NODELAY=1``, MaxPDUSize 131072, the files indexed with
``dcmqridx``) and one Orthanc (``TCP_NODELAY=1``, MaximumPduLength 131072,
filled through its HTTP API, on tmpfs) serve every round of their
configurations; each round retrieves the whole study into an
emptied folder on tmpfs (``/dev/shm`` when there is one) and checks that all
300 objects arrived. fastdicom stores durably (fsync, rename, folder fsync
before each C-STORE is answered; cheap on tmpfs); getscu only writes.

- ``getscu``: ``/usr/bin/getscu -S -pdu 131072 -od DIR`` (whole process, the
  anchor of ../shared/reference/qr-anchors.md: 413 MB/s there);
- ``fastdicom-cli``: ``python -m fastdicom get ... -o DIR`` (whole process,
  the IMAGE-level listing included);
- ``fastdicom-api``: :func:`fastdicom.net.get` in this process.

Run: FASTDICOM_BENCH_DIR=/tmp/bench-series python3 -m pytest benchmarks/test_bench_qr.py --benchmark-enable
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

import fastdicom
from fastdicom.net import get
from tests.net.conftest import free_port, wait_port
from tests.net.qr_peers import OrthancPeer

ENV = {**os.environ, "TCP_NODELAY": "1"}


def _tmpfs() -> str:
    return tempfile.mkdtemp(prefix="fastdicom-qr-bench-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)


def _count(folder: str) -> int:
    return sum(1 for _r, _d, files in os.walk(folder) for f in files if f.endswith(".dcm") or f.startswith("CT"))


@pytest.fixture(scope="module")
def qrscp(ct_series):
    if not (os.path.exists("/usr/bin/dcmqrscp") and os.path.exists("/usr/bin/dcmqridx")):
        pytest.skip("DCMTK dcmqrscp not installed")
    work = _tmpfs()
    storage = os.path.join(work, "storage")
    os.makedirs(storage)
    copies = []
    for p in ct_series:
        dst = os.path.join(storage, os.path.basename(p))
        shutil.copy(p, dst)
        copies.append(dst)
    subprocess.run(["/usr/bin/dcmqridx", storage, *copies], check=True, timeout=600)
    port = free_port()
    cfg = os.path.join(work, "dcmqrscp.cfg")
    with open(cfg, "w") as f:
        f.write(
            f"NetworkTCPPort = {port}\nMaxPDUSize = 131072\nMaxAssociations = 16\nHostTable BEGIN\nHostTable END\n"
            f"VendorTable BEGIN\nVendorTable END\nAETable BEGIN\nQRSCP {storage} RW (10, 4096mb) ANY\nAETable END\n"
        )
    proc = subprocess.Popen(
        ["/usr/bin/dcmqrscp", "-c", cfg, str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, env=ENV
    )
    try:
        wait_port(port, 20)
        study = str(fastdicom.read(ct_series[0], stop_before_pixels=True).StudyInstanceUID)
        yield port, study, work
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def orthanc(ct_series):
    if not os.path.exists(OrthancPeer.binary):
        pytest.skip("Orthanc not installed")
    work = _tmpfs()
    peer = OrthancPeer(work, {"QRSCU": 9, "FASTDICOM": 9})
    try:
        peer.upload(ct_series)
        study = str(fastdicom.read(ct_series[0], stop_before_pixels=True).StudyInstanceUID)
        yield peer.port, study, work
    finally:
        peer.stop()
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.benchmark(group="qr-get-series-300")
@pytest.mark.parametrize("server", ["dcmqrscp", "orthanc"])
@pytest.mark.parametrize("client", ["getscu", "fastdicom-cli", "fastdicom-api"])
def test_get_series(benchmark, request, ct_series, server, client):
    port, study, work = request.getfixturevalue("qrscp" if server == "dcmqrscp" else "orthanc")
    called = "QRSCP" if server == "dcmqrscp" else "ORTHANC"
    out = os.path.join(work, "out")
    address = f"{called}@127.0.0.1:{port}"
    size = sum(os.path.getsize(p) for p in ct_series)

    def clear():
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)

    def run():
        if client == "getscu":
            cmd = ["/usr/bin/getscu", "-S", "-aet", "QRSCU", "-aec", called, "-pdu", "131072", "-od", out]
            cmd += ["-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}", "127.0.0.1", str(port)]
            subprocess.run(cmd, check=True, capture_output=True, timeout=600, env=ENV)
        elif client == "fastdicom-cli":
            cmd = [sys.executable, "-m", "fastdicom", "get", address, "-k", f"StudyInstanceUID={study}", "-o", out]
            subprocess.run(cmd, check=True, capture_output=True, timeout=600)
        else:
            result = get(address, {"StudyInstanceUID": study}, into=out, level="STUDY")
            assert result.ok, result.as_json()

    benchmark.pedantic(run, setup=clear, rounds=7, warmup_rounds=1)
    med = benchmark.stats.stats.median
    benchmark.extra_info["MB/s"] = round(size / 1e6 / med, 1)
    benchmark.extra_info["objects/s"] = round(len(ct_series) / med, 1)
    benchmark.extra_info["correct"] = _count(out) == len(ct_series)
