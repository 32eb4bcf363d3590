"""Query/Retrieve benchmarks, side by side in one run: ``fastdicom serve`` (PacsServer) against DCMTK dcmqrscp.

C-FIND: the same studies in both archives (dcmqrscp holds at most 500 studies in one storage area, a
constant inside DCMTK), one client of fastdicom's protocol layer (TCP_NODELAY, one association per
client) sending the same seeded mix of study-level queries: by Patient ID (1 match), by Study Date range
(5 % of the studies) and by wildcard Patient Name (10 matches). Every answer count is checked.
C-MOVE: the 300-slice series to DCMTK ``storescp --ignore``; C-GET: DCMTK ``getscu`` into tmpfs.
Whole-operation wall time, medians of 3.

Run: python3 -m pytest benchmarks/test_bench_qr.py -s   (FASTDICOM_BENCH_STUDIES=500, FASTDICOM_BENCH_CLIENTS=4)
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time

import pytest

from fastdicom import Dataset
from fastdicom.archive import Archive
from fastdicom.config import Peer, ServerConfig, ServerLimits
from fastdicom.net import dimse, pdu
from fastdicom.net.association import Association
from fastdicom.net.dimse import DimseChannel
from fastdicom.services.query_retrieve import FIND, encode_answer
from fastdicom.synth import new_uid
from tests.net.conftest import free_port, wait_port

STUDIES = int(os.environ.get("FASTDICOM_BENCH_STUDIES", "500"))
PER_STUDY = 5
CLIENTS = int(os.environ.get("FASTDICOM_BENCH_CLIENTS", "4"))
QUERIES = int(os.environ.get("FASTDICOM_BENCH_QUERIES", "600"))
STUDY_FIND = next(u for u, m in FIND.items() if m == "study")
IMPLICIT = "1.2.840.10008.1.2"
ENV = dict(os.environ, TCP_NODELAY="1")


def _dcmtk(name: str) -> str:
    path = f"/usr/bin/{name}"
    if not os.path.exists(path):
        pytest.skip(f"DCMTK {name} not installed")
    return path


def make_corpus(folder: str, studies: int) -> list[str]:
    """``studies`` studies of ``PER_STUDY`` tiny CT instances: PatientID FPID%05d, PatientName PAT%04d^TEST,
    StudyDate 2000-01-01 + i days (as in ../shared/reference/qr-anchors.md)."""
    import datetime

    paths = []
    os.makedirs(folder, exist_ok=True)
    day0 = datetime.date(2000, 1, 1)
    for i in range(studies):
        study, series = f"1.2.826.0.1.3680043.8.498.77.{i + 1}", new_uid()
        for k in range(PER_STUDY):
            ds = Dataset()
            ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
            ds.SOPInstanceUID = new_uid()
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
            ds.PatientID, ds.PatientName = f"FPID{i:05d}", f"PAT{i:04d}^TEST"
            ds.StudyDate = (day0 + datetime.timedelta(days=i)).strftime("%Y%m%d")
            ds.StudyTime, ds.AccessionNumber, ds.StudyID = "120000", f"ACC{i:06d}", str(i)
            ds.StudyDescription, ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "BENCH", "CT", 1, k + 1
            ds.Rows = ds.Columns = 16
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.PixelData = bytes(512)
            p = os.path.join(folder, f"s{i:05d}_{k}.dcm")
            ds.save(p)
            paths.append(p)
    return paths


def queries(studies: int, n: int, seed: int) -> list[tuple[str, dict, int]]:
    """A seeded mix: 2/3 by Patient ID, 4/15 by a date range of 5 %, 1/15 by wildcard name: (kind, keys, matches)."""
    import datetime

    rng = random.Random(seed)
    day0 = datetime.date(2000, 1, 1)
    width = max(1, studies // 20)
    out = []
    for j in range(n):
        r = j % 15
        if r < 10:
            i = rng.randrange(studies)
            out.append(("patient-id", {"PatientID": f"FPID{i:05d}"}, 1))
        elif r < 14:
            a = rng.randrange(studies - width + 1)
            lo, hi = day0 + datetime.timedelta(days=a), day0 + datetime.timedelta(days=a + width - 1)
            out.append(("date-range", {"StudyDate": f"{lo:%Y%m%d}-{hi:%Y%m%d}"}, width))
        else:
            t = rng.randrange(studies // 10)
            out.append(("wildcard-pn", {"PatientName": f"PAT{t:03d}*"}, 10))
    rng.shuffle(out)
    return out


RETURN_KEYS = ("PatientID", "PatientName", "StudyDate", "StudyTime", "AccessionNumber", "StudyID",
               "StudyInstanceUID", "StudyDescription")  # fmt: skip


def _client(port: int, called: str, todo: list, barrier, out) -> None:
    assoc = Association.request(
        "127.0.0.1", port, calling_ae="BENCH", called_ae=called,
        contexts=[pdu.PresentationContext(1, STUDY_FIND, [IMPLICIT])], network_timeout=120,
    )  # fmt: skip
    ch = DimseChannel(assoc)
    barrier.wait()
    t_start = time.perf_counter()
    lat, bad = [], 0
    for kind, keys, expected in todo:
        ds = Dataset()
        ds.QueryRetrieveLevel = "STUDY"
        for k in RETURN_KEYS:
            setattr(ds, k, "")
        for k, v in keys.items():
            setattr(ds, k, v)
        t0 = time.perf_counter()
        mid = ch.next_message_id()
        ch.send_message(
            1, {"CommandField": dimse.C_FIND_RQ, "MessageID": mid, "Priority": 0, "AffectedSOPClassUID": STUDY_FIND},
            encode_answer(ds, None, IMPLICIT),
        )  # fmt: skip
        n = 0
        while True:
            st = ch.receive_message(timeout=120).command["Status"]
            if st not in (0xFF00, 0xFF01):
                break
            n += 1
        lat.append((kind, time.perf_counter() - t0))
        bad += n != expected or st != 0
    out.put((t_start, time.perf_counter(), lat, bad))
    assoc.release()


def run_find(port: int, called: str, clients: int, studies: int, seed: int = 1) -> dict:
    todo = queries(studies, QUERIES, seed)
    barrier = mp.Barrier(clients)
    out: mp.Queue = mp.Queue()
    procs = [mp.Process(target=_client, args=(port, called, todo[c::clients], barrier, out)) for c in range(clients)]
    for p in procs:
        p.start()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    start, end = min(r[0] for r in results), max(r[1] for r in results)
    lat = [x for r in results for x in r[2]]
    ms = sorted(t * 1000 for _, t in lat)

    def pct(v: list[float], q: float) -> float:
        return v[min(len(v) - 1, round(q / 100 * (len(v) - 1)))]

    by = {}
    for kind in ("patient-id", "date-range", "wildcard-pn"):
        v = sorted(t * 1000 for k, t in lat if k == kind)
        by[kind] = (pct(v, 50), pct(v, 99))
    return {
        "q/s": len(lat) / (end - start), "p50": pct(ms, 50), "p99": pct(ms, 99), "by": by,
        "wrong": sum(r[3] for r in results),
    }  # fmt: skip


class Dcmqrscp:
    """DCMTK dcmqrscp over a storage area filled with dcmqridx, MOVEDEST known as a move destination."""

    def __init__(self, files: list[str], work: str, move_port: int | None = None) -> None:
        self.port = free_port()
        area = os.path.join(work, "dcmqr")
        os.makedirs(area, exist_ok=True)
        cfg = os.path.join(work, "dcmqrscp.cfg")
        hosts = f"movedest = (MOVEDEST, 127.0.0.1, {move_port})\n" if move_port else ""
        with open(cfg, "w") as f:
            f.write(
                f"NetworkTCPPort = {self.port}\nMaxPDUSize = 131072\nMaxAssociations = 16\n"
                f"HostTable BEGIN\n{hosts}HostTable END\nVendorTable BEGIN\nVendorTable END\n"
                f"AETable BEGIN\nDCMQRSCP {area} RW (500, 1024mb) ANY\nAETable END\n"
            )
        for k in range(0, len(files), 500):
            subprocess.run([_dcmtk("dcmqridx"), area, *files[k : k + 500]], check=True, env=ENV, timeout=600)
        self.proc = subprocess.Popen([_dcmtk("dcmqrscp"), "-c", cfg], env=ENV)
        wait_port(self.port, 30)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def _pacs(folder: str, files: list[str], move_port: int | None = None):
    from fastdicom.services.pacs import PacsServer

    archive = Archive(folder)
    archive.add(files)
    peers = {"MOVEDEST": Peer("MOVEDEST", "127.0.0.1", move_port)} if move_port else {}
    cfg = ServerConfig(port=0, host="127.0.0.1", peers=peers, allow_any=True, limits=ServerLimits(match_limit=10**6))
    return PacsServer(config=cfg, archive=archive).start()


def _table(rows: list[tuple]) -> str:
    head = "| server | archive | clients | q/s (median of 3) | p50 / p99 ms | PatientID p50/p99 | date range p50/p99 | wildcard PN p50/p99 | wrong |"
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    for name, size, clients, r in rows:
        by = r["by"]
        lines.append(
            f"| {name} | {size} | {clients} | {r['q/s']:.1f} | {r['p50']:.1f} / {r['p99']:.1f} | "
            + " | ".join(f"{by[k][0]:.1f} / {by[k][1]:.1f}" for k in ("patient-id", "date-range", "wildcard-pn"))
            + f" | {r['wrong']} |"
        )
    return "\n".join(lines)


def _median_run(port: int, called: str, clients: int, studies: int) -> dict:
    runs = [run_find(port, called, clients, studies, seed=s) for s in (1, 2, 3)]
    return sorted(runs, key=lambda r: r["q/s"])[1]


@pytest.mark.benchmark
def test_cfind_vs_dcmqrscp():
    work = tempfile.mkdtemp(prefix="fastdicom-qr-bench-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    try:
        files = make_corpus(os.path.join(work, "src"), STUDIES)
        size = f"{STUDIES} st / {STUDIES * PER_STUDY} inst"
        rows = []
        dq = Dcmqrscp(files, work)
        try:
            for c in (1, CLIENTS):
                rows.append(("dcmqrscp", size, c, _median_run(dq.port, "DCMQRSCP", c, STUDIES)))
        finally:
            dq.stop()
        srv = _pacs(os.path.join(work, "pacs"), files)
        try:
            for c in (1, CLIENTS):
                rows.append(("fastdicom serve", size, c, _median_run(srv.port, "FASTDICOM", c, STUDIES)))
        finally:
            srv.stop()
        print("\n" + _table(rows))
        assert all(r["wrong"] == 0 for *_, r in rows)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return time.perf_counter() - t0


@pytest.mark.benchmark
def test_cmove_cget_vs_dcmqrscp(ct_series):
    """The 300-slice series: C-MOVE to storescp --ignore, C-GET by getscu into tmpfs, from both servers."""
    work = tempfile.mkdtemp(prefix="fastdicom-qr-bench-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    from fastdicom import read

    study = read(ct_series[0], stop_before_pixels=True).StudyInstanceUID
    total = sum(os.path.getsize(p) for p in ct_series)
    sink_port = free_port()
    sink = subprocess.Popen([_dcmtk("storescp"), "--ignore", "-aet", "MOVEDEST", str(sink_port)], env=ENV)
    wait_port(sink_port, 30)
    out = []
    try:
        servers = [("dcmqrscp", "DCMQRSCP", Dcmqrscp(ct_series, work, sink_port))]
        servers.append(("fastdicom serve", "FASTDICOM", _pacs(os.path.join(work, "pacs"), ct_series, sink_port)))
        for name, aet, srv in servers:
            port = srv.port
            keys = ["-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}"]
            move = [_dcmtk("movescu"), "-S", "-aec", aet, "-aem", "MOVEDEST", *keys, "127.0.0.1", str(port)]
            t_move = statistics.median(_timed(move) for _ in range(3))
            t_get = []
            for _ in range(3):
                od = tempfile.mkdtemp(dir=work)
                t_get.append(_timed([_dcmtk("getscu"), "-S", "-aec", aet, "-od", od, *keys, "127.0.0.1", str(port)]))
                assert len(os.listdir(od)) == len(ct_series)
                shutil.rmtree(od)
            out.append((name, total / 1e6 / t_move, total / 1e6 / statistics.median(t_get)))
            srv.stop()
    finally:
        sink.terminate()
        shutil.rmtree(work, ignore_errors=True)
    print("\n| server | C-MOVE to storescp --ignore MB/s | C-GET by getscu into tmpfs MB/s |\n|---|---|---|")
    for name, m, g in out:
        print(f"| {name} | {m:.1f} | {g:.1f} |")
