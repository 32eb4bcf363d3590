"""``fastdicom archive rebuild | verify | stats``: run as a user would, checked against the files."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from fastdicom import Archive, read, synth
from fastdicom.archive.checksum import checksum_file


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fastdicom", *args], capture_output=True, text=True, timeout=300)


def _fill(root: str, n: int = 5) -> list[str]:
    src = synth.write_ct_series(os.path.join(root, "..", "src"), n, rows=16, columns=16)
    with Archive(root) as a:
        assert a.add(src)["added"] == n
        return [s.path for s in a.instances("IMAGE", {})]


def _stats(root: str) -> dict:
    r = run("archive", "stats", root, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_stats_and_a_clean_verify(tmp_path):
    root = str(tmp_path / "a")
    paths = _fill(root)
    stats = _stats(root)
    assert (stats["patient"], stats["study"], stats["series"], stats["instance"]) == (1, 1, 1, 5)
    assert stats["bytes"] == sum(os.path.getsize(p) for p in paths) and stats["unknown_checksums"] == 0
    r = run("archive", "verify", root, "-q")
    assert r.returncode == 0 and r.stdout == "", r.stdout + r.stderr
    r = run("archive", "stats", root)
    assert r.returncode == 0 and "instance" in r.stdout


def test_verify_reports_every_difference(tmp_path):
    root = str(tmp_path / "a")
    paths = _fill(root)
    gone, corrupt, shorter = paths[0], paths[1], paths[2]
    os.unlink(gone)
    data = bytearray(open(corrupt, "rb").read())
    data[-1] ^= 0xFF
    open(corrupt, "wb").write(bytes(data))
    open(shorter, "r+b").truncate(os.path.getsize(shorter) - 2)
    stray = os.path.join(root, "1.2.3", "stray.dcm")
    os.makedirs(os.path.dirname(stray))
    open(stray, "wb").write(open(paths[3], "rb").read())
    r = run("archive", "verify", root, "-q")
    assert r.returncode == 1
    lines = sorted(r.stdout.splitlines())
    assert len(lines) == 4, r.stdout
    kinds = {line.split(":")[0]: line for line in lines}
    assert gone in kinds["missing"] and corrupt in kinds["checksum"] and shorter in kinds["size"]
    assert stray in kinds["not indexed"]


def test_rebuild_without_checksums_then_verify_fills_them(tmp_path):
    root = str(tmp_path / "a")
    paths = _fill(root)
    os.unlink(os.path.join(root, ".fastdicom", "index.sqlite"))
    r = run("archive", "rebuild", root, "--no-checksum", "-q")
    assert r.returncode == 0, r.stderr
    assert "5 indexed" in r.stdout
    assert _stats(root)["unknown_checksums"] == 5
    r = run("archive", "verify", root, "-q")
    assert r.returncode == 0, r.stdout + r.stderr
    stats = _stats(root)
    assert stats["unknown_checksums"] == 0 and stats["instance"] == 5
    with Archive(root) as a:
        found = a.lookup([read(p, stop_before_pixels=True).SOPInstanceUID for p in paths])
        assert all(s.checksum == checksum_file(s.path) for s in found.values()) and len(found) == 5


def test_rebuild_drops_rows_of_files_gone_and_reads_checksums(tmp_path):
    root = str(tmp_path / "a")
    paths = _fill(root)
    os.unlink(paths[0])
    (tmp_path / "a" / "junk.dcm").write_bytes(b"not DICOM")
    r = run("archive", "rebuild", root, "-q")
    assert r.returncode == 1 and "4 indexed, 1 not DICOM" in r.stdout, r.stdout + r.stderr
    stats = _stats(root)
    assert stats["instance"] == 4 and stats["unknown_checksums"] == 0


def test_bad_folders_get_a_clear_error(tmp_path):
    for cmd in ("verify", "stats", "rebuild"):
        r = run("archive", cmd, str(tmp_path / "nothing"))
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
