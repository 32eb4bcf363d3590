"""The archive index at scale, and ingest with the index against ingest without it.

A synthetic index of ``FASTDICOM_BENCH_INSTANCES`` instances (default 1,000,000: 100,000 studies of 2
series of 5 instances, 2 studies a patient) is generated as rows straight into the schema of
:class:`fastdicom.archive.index.Index` (no files: at 10 M a tree would take hours to write). Measured:
insert rate, index size, and the latency of study-level :meth:`fastdicom.Archive.find` calls answering at
most about ten studies (by Patient ID, by a one-day date range, by a wild-card name), each with the usual
return keys (Modalities in Study and Number of Study Related Instances included, computed per answer).
Correctness inside: each answer set equals what a plain SQL scan of the same rows finds.

The 10 M run is marked slow and runs with ``FASTDICOM_BENCH_10M=1``.

Ingest: the same sender (``fastdicom.net.store``, 4 associations) into ``StorageSCP`` with and without the
index, alternating rounds, medians; both fsync every object before answering.

Run: python3 -m pytest benchmarks/test_bench_index.py --benchmark-enable -q -p no:cacheprovider -s
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import tempfile
import time

import pytest

from fastdicom import Archive, synth
from fastdicom.archive.index import pn_fold
from fastdicom.net import store
from fastdicom.services import StorageSCP

INSTANCES = int(os.environ.get("FASTDICOM_BENCH_INSTANCES", "1000000"))
SERIES_PER_STUDY, PER_SERIES, STUDIES_PER_PATIENT = 2, 5, 2
SURNAMES = [f"NAME{k:04d}" for k in range(2000)]
GIVEN = [f"GIVEN{k:03d}" for k in range(200)]
MODALITIES = ["CT", "MR", "US", "CR", "DX", "PT", "NM", "XA"]
CT = "1.2.840.10008.5.1.4.1.1.2"
DAYS = 365 * 25
QUERIES = 300


def _date(day: int) -> str:
    t = time.gmtime(946684800 + day * 86400)  # from 2000-01-01
    return f"{t.tm_year:04d}{t.tm_mon:02d}{t.tm_mday:02d}"


def generate(root: str, instances: int, seed: int = 7) -> dict:
    """Rows for ``instances`` instances straight into an empty archive index; figures of the insert."""
    rng = random.Random(seed)
    archive = Archive(root)
    conn = archive.index._writer
    studies = instances // (SERIES_PER_STUDY * PER_SERIES)
    t0 = time.perf_counter()
    conn.execute("PRAGMA synchronous=OFF")  # a bulk load: durability of each batch does not matter here
    conn.execute("BEGIN")
    pk_series = pk_instance = 0
    patients = []
    batch_st, batch_se, batch_i = [], [], []

    def flush() -> None:
        conn.executemany(
            'INSERT INTO study (pk, patient_fk, "StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber",'
            ' "StudyID", "StudyDescription", "ReferringPhysicianName") VALUES (?,?,?,?,?,?,?,?,?)',
            batch_st,
        )
        conn.executemany(
            'INSERT INTO series (pk, study_fk, "SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription")'
            " VALUES (?,?,?,?,?,?)",
            batch_se,
        )
        conn.executemany(
            'INSERT INTO instance (pk, series_fk, "SOPInstanceUID", "SOPClassUID", "InstanceNumber",'
            " transfer_syntax_uid, path, size, checksum, checksum_algorithm) VALUES (?,?,?,?,?,?,?,?,?,?)",
            batch_i,
        )
        batch_st.clear()
        batch_se.clear()
        batch_i.clear()

    for s in range(studies):
        if s % STUDIES_PER_PATIENT == 0:
            name = f"{rng.choice(SURNAMES)}^{rng.choice(GIVEN)}"
            pid = f"PID{len(patients):08d}"
            patients.append((len(patients) + 1, pid, "", name, pn_fold(name), _date(rng.randrange(DAYS) - 20000)))
            conn.execute(
                'INSERT INTO patient (pk, "PatientID", "IssuerOfPatientID", "PatientName", _pn_fold,'
                ' "PatientBirthDate") VALUES (?,?,?,?,?,?)',
                patients[-1],
            )
        study_uid = f"1.2.826.0.1.3680043.10.1.{s + 1}"
        batch_st.append(
            (s + 1, len(patients), study_uid, _date(rng.randrange(DAYS)), "101010", f"ACC{s:08d}", str(s % 1000),
             "STUDY", "REF^DOC")
        )  # fmt: skip
        for n in range(SERIES_PER_STUDY):
            pk_series += 1
            series_uid = f"{study_uid}.{n + 1}"
            batch_se.append((pk_series, s + 1, series_uid, rng.choice(MODALITIES), str(n + 1), "SERIES"))
            for k in range(PER_SERIES):
                pk_instance += 1
                uid = f"{series_uid}.{k + 1}"
                rel = f"{study_uid}/{series_uid}/{uid}.dcm"
                batch_i.append((pk_instance, pk_series, uid, CT, str(k + 1), "1.2.840.10008.1.2.1", rel, 530000,
                                "0" * 32, "xxh3"))  # fmt: skip
        if len(batch_i) >= 50_000:
            flush()
    flush()
    conn.execute("COMMIT")
    conn.execute("PRAGMA synchronous=FULL")
    dt = time.perf_counter() - t0
    archive.close()
    size = sum(
        os.path.getsize(os.path.join(root, ".fastdicom", f)) for f in os.listdir(os.path.join(root, ".fastdicom"))
    )
    return {
        "instances": pk_instance,
        "studies": studies,
        "patients": len(patients),
        "insert_s": round(dt, 1),
        "rows_per_s": round((pk_instance + pk_series + studies + len(patients)) / dt),
        "index_mb": round(size / 2**20, 1),
        "names": [p[3] for p in patients],
        "pids": [p[1] for p in patients],
    }


RETURN = {
    "StudyInstanceUID": "",
    "PatientName": "",
    "PatientID": "",
    "StudyDate": "",
    "AccessionNumber": "",
    "ModalitiesInStudy": "",
    "NumberOfStudyRelatedInstances": "",
}


def _queries(info: dict, rng: random.Random) -> list[tuple[str, dict]]:
    out = []
    for _ in range(QUERIES):
        kind = rng.choice(("pid", "date", "name"))
        if kind == "pid":
            out.append((kind, {**RETURN, "PatientID": rng.choice(info["pids"])}))
        elif kind == "date":
            d = _date(rng.randrange(DAYS))
            out.append((kind, {**RETURN, "StudyDate": f"{d}-{d}"}))
        else:
            out.append((kind, {**RETURN, "PatientName": rng.choice(info["names"]).lower()[:-1] + "*"}))
    return out


def _expected(conn, kind: str, ident: dict) -> set[str]:
    """The same question as plain SQL over the rows (the generated values are upper-case ASCII)."""
    base = 'SELECT st."StudyInstanceUID" FROM study st JOIN patient p ON st.patient_fk = p.pk WHERE '
    if kind == "pid":
        rows = conn.execute(base + 'p."PatientID" = ?', (ident["PatientID"],))
    elif kind == "date":
        rows = conn.execute(base + 'st."StudyDate" = ?', (ident["StudyDate"][:8],))
    else:
        rows = conn.execute(base + 'p."PatientName" LIKE ?', (ident["PatientName"][:-1].upper() + "%",))
    return {r[0] for r in rows}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("index"))
    info = generate(root, INSTANCES)
    yield root, info
    shutil.rmtree(root, ignore_errors=True)


def _measure(root: str, info: dict) -> dict:
    archive = Archive(root, create=False)
    rng = random.Random(11)
    queries = _queries(info, rng)
    conn = archive.index.reader()
    lat: dict[str, list[float]] = {"pid": [], "date": [], "name": []}
    correct = True
    matches = []
    for kind, ident in queries:
        t0 = time.perf_counter()
        answers = list(archive.find("STUDY", ident))
        lat[kind].append(time.perf_counter() - t0)
        matches.append(len(answers))
        got = {a.StudyInstanceUID for a in answers}
        correct &= got == _expected(conn, kind, ident) and all(
            int(a.NumberOfStudyRelatedInstances) == 10 for a in answers
        )
    archive.close()
    every = sorted(x for v in lat.values() for x in v)
    out = {"correct": bool(correct), "mean_matches": round(statistics.mean(matches), 1)}
    for kind, v in [*lat.items(), ("all", every)]:
        v = sorted(v)
        out[f"{kind}_p50_ms"] = round(1000 * v[len(v) // 2], 2)
        out[f"{kind}_p99_ms"] = round(1000 * v[min(len(v) - 1, int(len(v) * 0.99))], 2)
    out["queries_per_s_1_client"] = round(len(every) / sum(every), 1)
    return out


def _report(benchmark, info: dict, figures: dict) -> None:
    for k in ("instances", "studies", "patients", "insert_s", "rows_per_s", "index_mb"):
        benchmark.extra_info[k] = info[k]
    benchmark.extra_info.update(figures)
    print({**{k: info[k] for k in ("instances", "insert_s", "rows_per_s", "index_mb")}, **figures})
    assert figures["correct"]


def test_index_study_queries(benchmark, synthetic):
    root, info = synthetic
    figures = {}

    def run() -> None:
        figures.update(_measure(root, info))

    benchmark.pedantic(run, rounds=1, warmup_rounds=0)
    _report(benchmark, info, figures)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("FASTDICOM_BENCH_10M"), reason="minutes: FASTDICOM_BENCH_10M=1")
def test_index_study_queries_10m(benchmark, tmp_path):
    root = str(tmp_path / "index10m")
    info = generate(root, 10_000_000)
    figures = {}
    benchmark.pedantic(lambda: figures.update(_measure(root, info)), rounds=1, warmup_rounds=0)
    _report(benchmark, info, figures)


# -- ingest with and without the index -------------------------------------------------------------


@pytest.fixture(scope="module")
def ingest_series():
    folder = os.environ.get("FASTDICOM_BENCH_DIR")
    base = os.path.join(folder, "index-ingest-200") if folder else tempfile.mkdtemp(prefix="fastdicom-bench-")
    found = sorted(os.listdir(base)) if os.path.isdir(base) else []
    if len(found) >= 200:
        return [os.path.join(base, f) for f in found[:200]]
    return synth.write_ct_series(base, 200, rows=256, columns=256)


def test_ingest_with_index_against_without(benchmark, ingest_series, tmp_path):
    size = sum(os.path.getsize(p) for p in ingest_series)
    times: dict[bool, list[float]] = {True: [], False: []}
    correct = True
    for r in range(10):
        for index in (r % 2 == 0, r % 2 == 1):
            root = tmp_path / f"r{r}-{int(index)}"
            with StorageSCP(str(root), port=0, index=index) as scp:
                t0 = time.perf_counter()
                report = store(ingest_series, f"FASTDICOM@127.0.0.1:{scp.port}", associations=4)
                times[index].append(time.perf_counter() - t0)
                correct &= not report.failed
                if index:
                    correct &= scp.archive is not None and scp.archive.stats()["instance"] == len(ingest_series)
            shutil.rmtree(root, ignore_errors=True)
    with_index, without = statistics.median(times[True]), statistics.median(times[False])
    benchmark.pedantic(lambda: None, rounds=1)
    benchmark.extra_info.update(
        {
            "with_index_MB_s": round(size / 1e6 / with_index, 1),
            "without_MB_s": round(size / 1e6 / without, 1),
            "ratio": round(without / with_index, 3),
            "correct": bool(correct),
        }
    )
    print(benchmark.extra_info)
    assert correct
