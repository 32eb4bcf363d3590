from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pydicom = pytest.importorskip("pydicom")
CT = Path(pydicom.data.__file__).parent / "test_files" / "CT_small.dcm"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fastdicom", *args], capture_output=True, text=True, timeout=120)


def test_dump():
    r = run("dump", str(CT))
    assert r.returncode == 0, r.stderr
    assert "(0010,0010) PN [CompressedSamples^CT1]" in r.stdout
    assert "# Dicom-Meta-Information-Header" in r.stdout


def test_dump_bad_file(tmp_path):
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(CT.read_bytes()[:1000])
    r = run("dump", str(bad))
    assert r.returncode == 1 and "InvalidDicomError" not in r.stderr and "offset" in r.stderr


def test_backends():
    r = run("backends")
    assert r.returncode == 0 and r.stdout.startswith("parse")


def test_scan_synthetic_series():
    r = run("scan", "--slices", "5")
    assert r.returncode == 0, r.stderr
    assert "5 files, 1 series, 0 unreadable" in r.stdout


def test_scan_folder(tmp_path):
    (tmp_path / "a.dcm").write_bytes(CT.read_bytes())
    (tmp_path / "junk.txt").write_text("not dicom")
    r = run("scan", str(tmp_path))
    assert r.returncode == 0 and "2 files, 1 series, 1 unreadable" in r.stdout
