"""What a Storage SCP stores is indexed before success is answered, with the checksum computed while receiving
(the native data plane feeds ``fastdicom._rust.Xxh3``, the twin any hasher): checked against the file's own."""

from __future__ import annotations

import hashlib
import os
import subprocess

import pytest

from fastdicom import Archive, read, synth
from fastdicom.archive.checksum import checksum_file
from fastdicom.services import StorageSCP, store
from tests.net.conftest import need


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    return synth.write_ct_series(str(tmp_path_factory.mktemp("series")), 6, rows=64, columns=64)


def _check_indexed(root, series, algorithm="xxh3"):
    archive = Archive(root, create=False, checksum=algorithm)
    try:
        uids = [read(p, stop_before_pixels=True).SOPInstanceUID for p in series]
        found = archive.lookup(uids)
        assert set(found) == set(uids)
        for s in found.values():
            data = open(s.path, "rb").read()
            assert s.size == len(data) and s.checksum_algorithm == algorithm
            if algorithm == "xxh3":
                assert s.checksum == checksum_file(s.path)
            else:
                assert s.checksum == hashlib.new(algorithm, data).hexdigest()
        assert archive.stats()["pending"] == 0
        (answer,) = archive.find("SERIES", {"SeriesInstanceUID": "", "NumberOfSeriesRelatedInstances": ""})
        assert int(answer.NumberOfSeriesRelatedInstances) == len(series)
    finally:
        archive.close()


def test_our_scu_into_the_indexed_scp(series, tmp_path):
    with StorageSCP(str(tmp_path), port=0) as scp:
        report = store(series, f"FASTDICOM@127.0.0.1:{scp.port}", associations=2)
        assert not report.failed and len(report.sent) == len(series)
        assert scp.archive is not None
        # indexed when answered: the SCP's own archive answers at once
        assert len(scp.archive.lookup([read(p, stop_before_pixels=True).SOPInstanceUID for p in series])) == 6
    _check_indexed(str(tmp_path), series)


def test_dcmtk_storescu_into_the_indexed_scp(series, tmp_path):
    storescu = need("storescu")
    with StorageSCP(str(tmp_path), port=0) as scp:
        r = subprocess.run(
            [storescu, "-aec", "FASTDICOM", "127.0.0.1", str(scp.port), *series],
            capture_output=True,
            text=True,
            timeout=120,
            env=dict(os.environ, TCP_NODELAY="1"),
        )
        assert r.returncode == 0, r.stderr
    _check_indexed(str(tmp_path), series)


@pytest.mark.parametrize("algorithm", ["sha256", "md5"])
def test_other_algorithms_through_the_scp(series, tmp_path, algorithm):
    with StorageSCP(str(tmp_path), port=0, checksum=algorithm) as scp:
        store(series, f"FASTDICOM@127.0.0.1:{scp.port}", associations=1)
    _check_indexed(str(tmp_path), series, algorithm)


def test_files_only_without_the_index(series, tmp_path):
    with StorageSCP(str(tmp_path), port=0, index=False) as scp:
        store(series, f"FASTDICOM@127.0.0.1:{scp.port}", associations=1)
        assert scp.archive is None
    assert not (tmp_path / ".fastdicom").exists()


def test_native_hasher_is_fed_exactly_what_the_data_plane_writes(series, tmp_path, monkeypatch):
    """The checksum must not come from re-reading: a commit that read the file would hide a wrong hasher."""
    from fastdicom.archive import folder

    def no_reading(*args, **kwargs):
        raise AssertionError("the commit re-read the file for its checksum")

    monkeypatch.setattr(folder, "checksum_file", no_reading)
    with StorageSCP(str(tmp_path), port=0) as scp:
        store(series, f"FASTDICOM@127.0.0.1:{scp.port}", associations=1)
    _check_indexed(str(tmp_path), series)
