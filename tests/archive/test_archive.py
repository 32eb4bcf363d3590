"""fastdicom.Archive: the index written with the commit, and find answers checked against the matcher run over
the files themselves (a brute-force pass: every file read, entities grouped, the one matcher applied)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict

import pytest

from fastdicom import Archive, read, synth
from fastdicom.archive import MatchLimitExceeded
from fastdicom.archive.checksum import checksum_file
from fastdicom.dataset.write import to_bytes
from fastdicom.query import MatchOptions, QueryError, compile_query

PATIENTS = [
    ("P1", "Doe^Jane", "F", "19700101"),
    ("P2", "DOE^JOHN", "M", "19650505"),
    ("P3", "Smith^Anna^B", "F", ""),
    ("P4", "山田^太郎", "M", "19800202"),
    ("", "Nobody^Known", "O", ""),
]
#: (patient index, study date, accession, description, modalities of its series, referring physician)
STUDIES = [
    (0, "20240105", "A100", "CT brain", ("CT", "CT"), "Smith^Ref"),
    (0, "20240220", "", "MR knee", ("MR",), "Jones"),
    (1, "20231231", "A102", "chest", ("CT", "SR"), ""),
    (1, "20240131", "A103", "Brain MR", ("MR", "MR", "CT"), "smith^other"),
    (2, "20240115", "A104", "", ("US",), "Smith^Ref"),
    (3, "20220606", "A105", "頭部", ("CT",), ""),
    (4, "", "A106", "no date", ("OT",), ""),
]


def _slice(study, series, k, patient, st, modality, n_series):
    pid, name, sex, birth = PATIENTS[patient]
    ds = synth.ct_slice(k, study_uid=study, series_uid=series, frame_uid="1.2.3", rows=4, columns=4)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientID, ds.PatientName, ds.PatientSex, ds.PatientBirthDate = pid, name, sex, birth
    _patient, date, accession, description, _mods, referring = st
    ds.StudyDate, ds.AccessionNumber, ds.StudyDescription, ds.ReferringPhysicianName = (
        date,
        accession,
        description,
        referring,
    )
    ds.Modality = modality
    ds.SeriesNumber = str(n_series)
    ds.InstanceNumber = str(k + 1)
    return ds


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """An archive filled through its commit path, and the brute-force entities from the files."""
    root = str(tmp_path_factory.mktemp("archive"))
    archive = Archive(root)
    batch = []
    for st in STUDIES:
        study = synth.new_uid()
        for n, modality in enumerate(st[4]):
            series = synth.new_uid()
            for k in range(2 + n):
                ds = _slice(study, series, k, st[0], st, modality, n + 1)
                staged = archive.folder.stage()
                staged.write(memoryview(to_bytes(ds)))
                batch.append((staged, ds.SOPClassUID, ds.SOPInstanceUID))
    outcomes = archive.folder.commit_batch(batch)
    assert all(o.ok for o in outcomes)
    yield archive
    archive.close()


def _brute(archive, level, identifier, model="study", options=None):
    """The matcher over every file: entities at ``level`` (representative header + computed keys) that match."""
    files = []
    for folder, dirs, names in os.walk(archive.root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        files += [os.path.join(folder, n) for n in names]
    headers = [read(f, stop_before_pixels=True) for f in sorted(files)]
    key = {
        "PATIENT": lambda d: (d.get("PatientID") or "",),
        "STUDY": lambda d: d.StudyInstanceUID,
        "SERIES": lambda d: d.SeriesInstanceUID,
        "IMAGE": lambda d: d.SOPInstanceUID,
    }[level]
    groups = defaultdict(list)
    for d in headers:
        groups[key(d)].append(d)
    query = compile_query(archive_identifier(identifier), options)
    out = {}
    for k, members in groups.items():
        rep = members[0]
        view = {e.tag: e.value for e in rep}
        if level == "STUDY":
            view[0x00080061] = sorted({m.Modality for m in members})
            view[0x00201208] = str(len(members))
            view[0x00201206] = str(len({m.SeriesInstanceUID for m in members}))
        if level == "PATIENT":
            view[0x00201200] = str(len({m.StudyInstanceUID for m in members}))
        if level == "SERIES":
            view[0x00201209] = str(len(members))
        if query.matches(_View(view)):
            out[k] = view
    return query, out


class _View:
    def __init__(self, values):
        self.values = values

    def get(self, tag, default=None):
        v = self.values.get(tag, default)
        return v if v != "" else default


def archive_identifier(identifier):
    from fastdicom.archive.archive import _identifier

    return _identifier(identifier)


QUERIES = [
    ("STUDY", {"PatientID": "P1", "StudyInstanceUID": "", "StudyDate": ""}),
    ("STUDY", {"PatientName": "doe*", "PatientID": ""}),
    ("STUDY", {"PatientName": "DOE^JANE"}),
    ("STUDY", {"PatientName": "*an*"}),
    ("STUDY", {"PatientName": "山田*", "StudyDescription": ""}),
    ("STUDY", {"StudyDate": "20240101-20240131", "AccessionNumber": ""}),
    ("STUDY", {"StudyDate": "-20231231"}),
    ("STUDY", {"StudyDate": "20240115"}),
    ("STUDY", {"StudyDate": '""'}),
    ("STUDY", {"AccessionNumber": '""', "StudyDescription": ""}),
    ("STUDY", {"AccessionNumber": "A10?"}),
    ("STUDY", {"AccessionNumber": ["A100", "A104"]}),
    ("STUDY", {"ModalitiesInStudy": "MR", "NumberOfStudyRelatedInstances": ""}),
    ("STUDY", {"ModalitiesInStudy": ["US", "SR"], "NumberOfStudyRelatedSeries": ""}),
    ("STUDY", {"ReferringPhysicianName": "smith*"}),
    ("STUDY", {"StudyDescription": "*rain*"}),
    ("STUDY", {"PatientSex": "F", "PatientBirthDate": "19600101-"}),
    ("STUDY", {"NumberOfStudyRelatedInstances": "2"}),
    ("STUDY", {"InstanceCreationDate": "20261123"}),  # not indexed: matched on a file's header
    ("SERIES", {"Modality": "CT", "SeriesNumber": "", "NumberOfSeriesRelatedInstances": ""}),
    ("SERIES", {"PatientID": "P2", "Modality": "MR"}),
    ("IMAGE", {"InstanceNumber": "3", "SOPClassUID": "", "PatientName": "d*"}),
    ("IMAGE", {"AccessionNumber": "A103", "ImageType": "", "InstanceCreationTime": ""}),
]


@pytest.mark.parametrize("level,identifier", QUERIES, ids=[f"{lv}-{'-'.join(i)}" for lv, i in QUERIES])
def test_find_answers_what_the_matcher_finds_in_the_files(filled, level, identifier):
    query, expected = _brute(filled, level, identifier)
    answers = list(filled.find(level, identifier))
    unique = {"STUDY": "StudyInstanceUID", "SERIES": "SeriesInstanceUID", "IMAGE": "SOPInstanceUID"}[level]
    assert len(answers) == len(expected)
    assert answers, "each query here matches something: it must be able to fail"
    uid_tag = {"STUDY": 0x0020000D, "SERIES": 0x0020000E, "IMAGE": 0x00080018}[level]
    # the answers name the entities the brute force found (by their unique key, read from the representative)
    found = {}
    for a in answers:
        assert a.QueryRetrieveLevel == level
        assert set(e.tag for e in a) >= set(query.return_tags)
        found[a.get(unique) if a.get(unique) else None] = a
    exp_uids = {v[uid_tag] for v in expected.values()}
    if unique in {k for k in identifier}:
        assert set(found) == exp_uids
    for a in answers:
        for tag in query.return_tags:
            got = a.get(tag)
            if unique in identifier:
                want = expected_by_uid(expected, uid_tag, a.get(unique)).get(tag)
                assert _same(got, want), (tag, got, want)


def expected_by_uid(expected, uid_tag, uid):
    for v in expected.values():
        if v[uid_tag] == uid:
            return v
    raise AssertionError(uid)


def _same(got, want):
    norm = lambda v: [str(x) for x in v] if isinstance(v, list) else ([] if v in (None, "") else [str(v)])  # noqa: E731
    return norm(got) == norm(want)


@pytest.mark.parametrize("level,identifier", [q for q in QUERIES if q[0] == "STUDY"])
def test_find_answers_name_the_studies_the_matcher_finds(filled, level, identifier):
    ident = dict(identifier, StudyInstanceUID="")
    _query, expected = _brute(filled, level, ident)
    got = {a.StudyInstanceUID for a in filled.find(level, ident)}
    assert got == set(expected)


def test_patient_level_in_the_patient_root(filled):
    ident = {"PatientName": "*o*", "PatientID": "", "NumberOfPatientRelatedStudies": ""}
    _q, expected = _brute(filled, "PATIENT", ident, model="patient")
    answers = list(filled.find("PATIENT", ident, model="patient"))
    assert {(a.get("PatientID") or "",) for a in answers} == set(expected)
    assert {a.PatientID: int(a.NumberOfPatientRelatedStudies) for a in answers}["P2"] == 2
    with pytest.raises(QueryError):
        filled.find("PATIENT", ident)  # no PATIENT level in the Study Root


def test_hierarchical_refuses_lower_keys_relational_matches_through_them(filled):
    with pytest.raises(QueryError, match="below"):
        list(filled.find("STUDY", {"Modality": "MR"}))
    opts = MatchOptions(relational=True)
    got = {a.StudyInstanceUID for a in filled.find("STUDY", {"Modality": "MR", "StudyInstanceUID": ""}, options=opts)}
    _q, expected = _brute(filled, "STUDY", {"ModalitiesInStudy": "MR"})
    assert got == set(expected) and len(got) == 2


def test_match_limit_is_raised_before_any_answer(filled):
    with pytest.raises(MatchLimitExceeded) as info:
        filled.find("STUDY", {"StudyInstanceUID": ""}, limit=3)
    assert info.value.limit == 3
    assert len(list(filled.find("STUDY", {"StudyInstanceUID": ""}, limit=len(STUDIES)))) == len(STUDIES)


def test_instances_lookup_and_checksums(filled):
    got = list(filled.instances("STUDY", {"AccessionNumber": "A103"}))
    assert len(got) == 2 + 3 + 4
    assert all(s.study_instance_uid == got[0].study_instance_uid and s.patient_id == "P2" for s in got)
    for s in got:
        assert os.path.getsize(s.path) == s.size
        assert s.checksum == checksum_file(s.path, "xxh3") == filled.checksum_file(s) and s.checksum_algorithm == "xxh3"
        assert read(s.path, stop_before_pixels=True).SOPInstanceUID == s.sop_instance_uid
    uids = [s.sop_instance_uid for s in got[:3]] + ["1.2.3.404"]
    found = filled.lookup(uids)
    assert set(found) == set(uids[:3]) and found[uids[0]] == got[0]


def test_the_index_survives_reopening_and_stats(filled):
    again = Archive(filled.root, create=False)
    try:
        assert (
            again.stats()["instance"]
            == filled.stats()["instance"]
            == sum(sum(2 + n for n in range(len(st[4]))) for st in STUDIES)
        )
        assert again.stats()["study"] == len(STUDIES) and again.stats()["pending"] == 0
    finally:
        again.close()


def test_add_remove_and_duplicates(tmp_path):
    outside = tmp_path / "src"
    paths = synth.write_ct_series(str(outside), 3, rows=4, columns=4)
    archive = Archive(str(tmp_path / "a"))
    try:
        assert archive.add(paths) == {"added": 3, "failed": 0}
        assert archive.add([*paths[:1], str(tmp_path / "nothing.dcm")]) == {"added": 1, "failed": 1}  # overwrite
        assert archive.stats()["instance"] == 3
        (tmp_path / "junk.dcm").write_bytes(b"not dicom")
        assert archive.add([str(tmp_path / "junk.dcm")])["failed"] == 1
        uid = read(paths[0]).SOPInstanceUID
        stored = archive.lookup([uid])[uid]
        assert stored.path.startswith(archive.root) and open(stored.path, "rb").read() == open(paths[0], "rb").read()
        assert archive.remove([uid, "1.2.3.404"]) == 1
        assert not os.path.exists(stored.path) and archive.lookup([uid]) == {}
        assert archive.remove([read(p).SOPInstanceUID for p in paths[1:]]) == 2
        assert archive.stats()["study"] == 0 and archive.stats()["patient"] == 0
    finally:
        archive.close()


@pytest.mark.parametrize("algorithm", ["sha256", "md5"])
def test_other_checksums(tmp_path, algorithm):
    import hashlib

    archive = Archive(str(tmp_path), checksum=algorithm)
    try:
        ds = synth.ct_slice(0, study_uid="1.2.3", series_uid="1.2.3.4", frame_uid="1.2.3.5", rows=4, columns=4)
        staged = archive.folder.stage()
        staged.write(memoryview(to_bytes(ds)))
        assert archive.folder.commit(staged).ok
        (s,) = archive.lookup([ds.SOPInstanceUID]).values()
        assert s.checksum == hashlib.new(algorithm, open(s.path, "rb").read()).hexdigest()
        assert s.checksum_algorithm == algorithm
    finally:
        archive.close()


CRASH = r"""
import os, sys
from fastdicom import Archive, synth
from fastdicom.archive import folder
from fastdicom.dataset.write import to_bytes
real = folder.FolderArchive._settle
def crash(self, outcomes, folders):
    real(self, outcomes, folders)   # renamed and durable: killed before the index rows
    os._exit(9)
folder.FolderArchive._settle = crash
a = Archive(sys.argv[1])
batch = []
for k in range(3):
    ds = synth.ct_slice(k, study_uid="1.2.3", series_uid="1.2.3.4", frame_uid="1.2.3.5", rows=4, columns=4)
    ds.SOPInstanceUID = f"1.2.3.4.{k + 1}"
    staged = a.folder.stage()
    staged.write(memoryview(to_bytes(ds)))
    batch.append((staged, ds.SOPClassUID, ds.SOPInstanceUID))
half = a.folder.stage()   # staged, never committed: a .part file and no pending row
half.write(memoryview(b"x" * 100))
a.folder.commit_batch(batch)
"""


def test_killed_between_rename_and_index_rows_is_reconciled_at_start(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run([sys.executable, "-c", CRASH, str(tmp_path)], env=env, timeout=120, capture_output=True)
    assert r.returncode == 9, r.stderr.decode()
    files = sorted(os.listdir(tmp_path / "1.2.3" / "1.2.3.4"))
    assert files == ["1.2.3.4.1.dcm", "1.2.3.4.2.dcm", "1.2.3.4.3.dcm"]
    import sqlite3

    db = sqlite3.connect(tmp_path / ".fastdicom" / "index.sqlite")
    assert db.execute("SELECT count(*) FROM instance").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM pending").fetchone()[0] == 3
    db.close()
    archive = Archive(str(tmp_path))
    try:
        assert archive.reconciled == 3
        found = archive.lookup([f"1.2.3.4.{k}" for k in (1, 2, 3)])
        assert len(found) == 3
        for s in found.values():
            assert s.checksum == checksum_file(s.path) and s.size == os.path.getsize(s.path)
        assert archive.stats()["pending"] == 0
    finally:
        archive.close()


def test_killed_before_the_rename_leaves_nothing(tmp_path):
    code = CRASH.replace("real(self, outcomes, folders)", "pass").replace(
        "folder.FolderArchive._settle = crash",
        "folder.FolderArchive._rename = lambda self, r, f: os._exit(9)",
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, timeout=120, capture_output=True)
    assert r.returncode == 9, r.stderr.decode()
    archive = Archive(str(tmp_path))
    try:
        assert archive.reconciled == 0 and archive.stats()["instance"] == 0 and archive.stats()["pending"] == 0
        left = os.listdir(tmp_path / ".incoming")
        assert len(left) == 1  # the staged object never committed: sweep's business, not the index's
        archive.folder.sweep()
        assert not os.listdir(tmp_path / ".incoming")
        assert not [f for _d, _s, files in os.walk(tmp_path / "1.2.3") for f in files]
    finally:
        archive.close()


def _commit(archive, ds):
    staged = archive.folder.stage()
    staged.write(memoryview(to_bytes(ds)))
    outcome = archive.folder.commit(staged)
    assert outcome.ok, outcome


def test_entities_keep_their_first_values_until_an_instance_is_stored_again(tmp_path):
    archive = Archive(str(tmp_path))
    try:
        first = synth.ct_slice(0, study_uid="1.2.3", series_uid="1.2.3.4", frame_uid="1.2.3.5", rows=4, columns=4)
        first.PatientName = "First^Name"
        _commit(archive, first)
        second = synth.ct_slice(1, study_uid="1.2.3", series_uid="1.2.3.4", frame_uid="1.2.3.5", rows=4, columns=4)
        second.PatientName = "Second^Name"
        _commit(archive, second)
        (answer,) = archive.find("STUDY", {"PatientName": "", "NumberOfStudyRelatedInstances": ""})
        assert answer.PatientName == "First^Name" and int(answer.NumberOfStudyRelatedInstances) == 2
        first.PatientName = "Corrected^Name"  # the same SOP Instance again: a correction
        _commit(archive, first)
        (answer,) = archive.find("STUDY", {"PatientName": "", "NumberOfStudyRelatedInstances": ""})
        assert answer.PatientName == "Corrected^Name" and int(answer.NumberOfStudyRelatedInstances) == 2
    finally:
        archive.close()


def test_queries_run_while_the_writer_commits(tmp_path):
    import threading

    archive = Archive(str(tmp_path))
    errors: list[BaseException] = []
    done = threading.Event()

    def write() -> None:
        try:
            for s in range(20):
                batch = []
                for k in range(5):
                    ds = synth.ct_slice(k, study_uid=f"1.2.3.{s}", series_uid=f"1.2.3.{s}.1", frame_uid="1.2", rows=4,
                                        columns=4)  # fmt: skip
                    staged = archive.folder.stage()
                    staged.write(memoryview(to_bytes(ds)))
                    batch.append((staged, ds.SOPClassUID, ds.SOPInstanceUID))
                assert all(o.ok for o in archive.folder.commit_batch(batch))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            done.set()

    def read_() -> None:
        try:
            while not done.is_set():
                for a in archive.find("STUDY", {"StudyInstanceUID": "", "NumberOfStudyRelatedInstances": ""}):
                    assert int(a.NumberOfStudyRelatedInstances) in (0, 5)  # a batch is seen whole or not at all
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=write)] + [threading.Thread(target=read_) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    try:
        assert not errors, errors
        assert archive.stats()["study"] == 20 and archive.stats()["instance"] == 100
    finally:
        archive.close()
