"""``fastdicom dump`` of files cut short: every element read before the fault, then the fault and its offset.

Real files (pydicom's test files) are cut inside the File Meta, in the middle of
a value, inside an element header, inside a sequence (an element of an item, an
item header) and inside Pixel Data, and the tags printed are compared with
DCMTK's ``dcmdump +E`` on the same bytes (``+E``: print what was read although
the file is damaged; by default dcmdump prints nothing for such a file).

What the two tools know differently, and is therefore not compared here:
- a cut inside the value of File Meta Group Length (bytes 140-143 of a file
  with a preamble): fastdicom names (0002,0000) as not read, dcmdump prints
  nothing for it;
- an item whose length goes past the end of its sequence (a lying length, not a
  cut): fastdicom stops at the end of the sequence, dcmdump reads on past it
  into the elements that follow (see test_lying_item_length).
"""

from __future__ import annotations

import re
import shutil
import struct
from pathlib import Path

import pytest

import fastdicom
from fastdicom.cli import main

pydicom = pytest.importorskip("pydicom")
BASE = Path(pydicom.data.__file__).parent / "test_files"
DCMDUMP = "/usr/bin/dcmdump"
needs_dcmdump = pytest.mark.skipif(shutil.which(DCMDUMP) is None, reason=f"{DCMDUMP} (DCMTK) not installed")

# (file, what it holds, the cuts that apply to it)
FILES = {
    "CT_small.dcm": ("explicit VR LE, private tags, a defined-length sequence", ["meta", "value", "header", "pixels"]),
    "rtplan.dcm": ("implicit VR, nested defined-length sequences", ["meta", "value", "header", "sequence", "item"]),
    "reportsi.dcm": ("explicit VR, nested undefined-length sequences", ["value", "header", "sequence", "item"]),
    "rtstruct.dcm": ("implicit VR, undefined-length sequences", ["value", "sequence", "item"]),
    "JPEG2000.dcm": ("encapsulated Pixel Data, undefined-length sequences", ["sequence", "pixels"]),
    "MR_small_bigendian.dcm": ("explicit VR big endian", ["value", "header", "pixels"]),
}
CASES = [(name, kind) for name, (_what, kinds) in FILES.items() for kind in kinds]


def _span(elem) -> tuple[int, int, int]:
    """``(header offset, value offset, end)`` of a parsed element."""
    return elem._hdr, elem._value_offset, elem._end


def _leaf(ds) -> tuple[int, int]:
    """``(cut, expected stop)`` in the middle of the value of the innermost element of the first sequence."""
    sq = next(e for e in ds if e.vr == "SQ" and e.value)
    item = sq.value[-1]
    elem = [e for e in item if len(e.raw) >= 2 or e.vr == "SQ" and e.value][-1]
    if elem.vr == "SQ" and elem.value:
        return _leaf(item)
    hdr, off, _end = _span(elem)
    return off + len(elem.raw) // 2, hdr


def _cut(path: Path, kind: str) -> tuple[int, int]:
    """Where to cut the file, and the offset at which reading should be said to stop (the innermost element cut)."""
    ds = fastdicom.read(path)
    top = [e for e in ds if e.tag != 0x7FE00010]
    if kind == "meta":
        elem = ds.file_meta[0x00020010]
        hdr, off, end = _span(elem)
        return off + (end - off) // 2, hdr
    if kind == "value":
        elem = [e for e in top if e.vr != "SQ" and len(e.raw) >= 4][len(top) // 3]
        hdr, off, end = _span(elem)
        return off + (end - off) // 2, hdr
    if kind == "header":
        hdr, _off, _end = _span(top[len(top) // 2])
        return hdr + 3, hdr
    if kind == "sequence":
        return _leaf(ds)
    if kind == "item":
        sq = next(e for e in ds if e.vr == "SQ" and len(e.value) >= 2)
        item_hdr = sq.value[1]._start - 8
        return item_hdr + 4, item_hdr
    if kind == "pixels":
        hdr, off, end = _span(ds[0x7FE00010])
        return off + (end - off) // 2, hdr
    raise AssertionError(kind)


def _tags(text: str, nested: bool) -> list[str]:
    """The tags of the element lines of a dump, in order (item and delimiter lines left out)."""
    out = []
    for line in text.splitlines():
        stripped = line.strip()
        if (nested or line == stripped) and re.match(r"\([0-9a-f]{4},[0-9a-f]{4}\)", stripped):
            if not stripped.startswith("(fffe,"):
                out.append(stripped[:11])
    return out


def _dump(path: Path, backend: str, capsys) -> tuple[int, str, str]:
    rc = main(["dump", "--backend", backend, str(path)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _stopped_at(err: str) -> int:
    m = re.search(r"reading stopped at offset (\d+)", err)
    assert m, err
    return int(m.group(1))


@needs_dcmdump
@pytest.mark.parametrize(("name", "kind"), CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_cut_file_prints_what_dcmdump_prints(name, kind, backend, tmp_path, capsys):
    import subprocess

    data = (BASE / name).read_bytes()
    cut, stop = _cut(BASE / name, kind)
    path = tmp_path / f"cut_{cut}.dcm"
    path.write_bytes(data[:cut])

    rc, out, err = _dump(path, backend, capsys)
    ref = subprocess.run([DCMDUMP, "+E", str(path)], capture_output=True, text=True, errors="replace", timeout=60)

    assert rc == 1 and ref.returncode != 0, (rc, err, ref.stderr)
    assert _tags(out, nested=False), out
    assert _tags(out, nested=False) == _tags(ref.stdout, nested=False)
    assert _tags(out, nested=True) == _tags(ref.stdout, nested=True)
    assert _stopped_at(err) == stop, err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("cut", [1000, 1997, 20000])
def test_elements_before_the_cut_are_those_of_the_whole_file(cut, backend, tmp_path, capsys):
    """The lines printed for a cut file are the whole file's lines up to the element at the cut."""
    data = (BASE / "CT_small.dcm").read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[:cut])
    rc, out, err = _dump(path, backend, capsys)
    rc_full, full, _ = _dump(BASE / "CT_small.dcm", backend, capsys)
    assert rc == 1 and rc_full == 0
    lines = out.splitlines()
    whole = [line for line in lines if "not read" not in line]
    assert full.splitlines()[: len(whole)] == whole
    assert _stopped_at(err) <= cut < _stopped_at(err) + 12 + 65536


def test_lying_item_length(backend, tmp_path, capsys):
    """An item longer than its (defined-length) sequence: read() succeeds, dump stops inside the sequence."""
    data = bytearray((BASE / "rtplan.dcm").read_bytes())
    ds = fastdicom.read(bytes(data))
    sq = next(e for e in ds if e.vr == "SQ" and not e.is_undefined_length and len(e.value) > 1)
    _hdr, off, end = _span(sq)
    second = off + 8 + struct.unpack_from("<L", data, off + 4)[0]
    struct.pack_into("<L", data, second + 4, 0x7FFF0)
    path = tmp_path / "lie.dcm"
    path.write_bytes(bytes(data))

    rc, out, err = _dump(path, backend, capsys)
    assert rc == 1
    assert "(300a,0010) SQ (Sequence, not read to its end)" in out
    first_item = [e.tag for e in sq.value[0]]
    assert all(f"({t >> 16:04x},{t & 0xFFFF:04x})" in out for t in first_item)
    assert "item length 524272 goes past the end of the sequence" in err
    assert _stopped_at(err) == end  # the second item's elements read up to the end of the sequence
    assert not [line for line in out.splitlines() if line.startswith("(300a,0070)")]  # nothing after the fault


def test_cut_deflated_file(backend, tmp_path, capsys):
    data = (BASE / "image_dfl.dcm").read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[:1500])
    rc, out, err = _dump(path, backend, capsys)
    assert rc == 1
    assert "(0010,0010) PN" in out and "# Dicom-Meta-Information-Header" in out
    assert "reading stopped at offset" in err
    with pytest.raises(fastdicom.errors.InvalidDicomError, match="cut short"):
        fastdicom.read(data[:371], backend=backend)  # cut where the inflated bytes end between two elements


def test_exit_status_documented(capsys):
    with pytest.raises(SystemExit):
        main(["dump", "--help"])
    assert "Exit status" in capsys.readouterr().out
