"""Byte order conversion (PS3.5 7.3, 8.2): pixels we encode, against DCMTK's dcmconv and pydicom, and the corpus.

The rules are in ``fastdicom/dataset/byteorder.py``; ``pixel_order.py`` writes
the standard's reading (and pydicom's) out again for the tests. In short: OW
swaps in 16-bit words whatever Bits Allocated, OB never, OF and OD in 4 and 8
bytes; OB Pixel Data of more than 8 bits (not conformant) is read as bytes
and written as OW.

Where DCMTK and pydicom disagree, the tests follow the standard, which DCMTK
implements: 1-bit OW and 24- to 64-bit OW under big endian are 16-bit words
(pydicom: unswapped bytes, and units of Bits Allocated), big-endian OB of 16
or 32 bits holds its cells least significant byte first (pydicom: units of
Bits Allocated). The tests assert what pydicom reads there too, so that a
change on either side shows.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import warnings
from dataclasses import dataclass

import numpy as np
import pytest

import fastdicom
from fastdicom.dataset import byteorder
from fastdicom.dataset.dataset import Dataset
from fastdicom.dataset.write import encode_dataset
from fastdicom.errors import FastDicomError, InvalidDicomError

from ..conftest import backends_to_test
from ..corpus import corpus_files
from . import pixel_order

pydicom = pytest.importorskip("pydicom")

IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
BIG = "1.2.840.10008.1.2.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
UNCOMPRESSED = (IMPLICIT, EXPLICIT, BIG, DEFLATED)
DCMCONV = "/usr/bin/dcmconv" if os.path.exists("/usr/bin/dcmconv") else None
ROWS, COLUMNS = 3, 5  # odd: 8-bit frames of odd length, 1-bit frames that start inside a byte or a word

KERNELS = backends_to_test("byteswap")


@pytest.fixture(params=KERNELS)
def kernel(request, monkeypatch) -> str:
    """Each byteswap implementation in turn, for every conversion the writer makes."""
    original = byteorder.byteswap
    monkeypatch.setattr(byteorder, "byteswap", lambda raw, size, backend=None: original(raw, size, request.param))
    return request.param


# -- the rules, on bytes ----------------------------------------------------------------------

UNITS = {"OB": 1, "UN": 1, "LO": 1, "US": 2, "SS": 2, "OW": 2, "AT": 2, "UL": 4, "SL": 4, "FL": 4, "OL": 4}
UNITS |= {"OF": 4, "FD": 8, "OD": 8, "SV": 8, "UV": 8, "OV": 8}


@pytest.mark.parametrize("backend", KERNELS)
@pytest.mark.parametrize("vr", sorted(UNITS))
def test_each_vr_swaps_in_its_own_unit(vr, backend):
    data = bytes(range(1, 18))  # 17 bytes: a trailing partial unit stays as it is
    big = byteorder.convert(data, vr, True, False, backend=backend)
    assert bytes(big) == pixel_order.swap(data, UNITS[vr])
    assert bytes(byteorder.convert(big, vr, False, True, backend=backend)) == data
    assert byteorder.convert(data, vr, True, True, backend=backend) is data  # nothing to do: no copy
    assert byteorder.convert(data, vr, False, False, backend=backend) is data


@pytest.mark.parametrize("backend", KERNELS)
def test_pixel_data_swaps_by_vr_not_by_bits_allocated(backend):
    cells = bytes(range(16))
    for ba in (1, 8, 16, 24, 32, 40, 48, 56, 64):
        assert byteorder.written_vr(byteorder.PIXEL_DATA, "OW", ba) == "OW"
        big = byteorder.convert(cells, "OW", True, False, tag=byteorder.PIXEL_DATA, backend=backend)
        assert bytes(big) == pixel_order.swap(cells, 2)  # 16-bit words, 32- and 64-bit cells too
    for ba in (1, 8):
        assert byteorder.written_vr(byteorder.PIXEL_DATA, "OB", ba) == "OB"
        assert byteorder.convert(cells, "OB", True, False, tag=byteorder.PIXEL_DATA) is cells
    for ba in (16, 32):
        vr = byteorder.written_vr(byteorder.PIXEL_DATA, "OB", ba)
        assert vr == "OW"
        # OB cells are least significant byte first in either byte order; as big-endian OW, words swap.
        for src_little in (True, False):
            out = byteorder.convert(cells, "OB", src_little, False, dst_vr=vr, backend=backend)
            assert bytes(out) == pixel_order.swap(cells, 2)
            out = byteorder.convert(cells, "OB", src_little, True, dst_vr=vr, backend=backend)
            assert bytes(out) == cells
    assert byteorder.written_vr(0x60003000, "OB", 16) == "OB"  # only Pixel Data is rewritten
    # Pixel Data with VR UN swaps as the VR it would have in implicit VR.
    assert byteorder.swap_size("UN", byteorder.PIXEL_DATA) == 2
    assert byteorder.swap_size("UN", byteorder.FLOAT_PIXEL_DATA) == 4
    assert byteorder.swap_size("UN", byteorder.DOUBLE_FLOAT_PIXEL_DATA) == 8
    assert byteorder.swap_size("UN", 0x00091010) == 1


# -- pixels we encode ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """Native pixels of one kind: Bits Allocated, VR, signed, frames, samples."""

    bits: int
    vr: str
    signed: bool = False
    frames: int = 1
    samples: int = 1

    @property
    def tag(self) -> int:
        return {"OF": byteorder.FLOAT_PIXEL_DATA, "OD": byteorder.DOUBLE_FLOAT_PIXEL_DATA}.get(
            self.vr, byteorder.PIXEL_DATA
        )

    @property
    def out_vr(self) -> str:
        """The VR fastdicom writes when it re-encodes (PS3.5 8.2: OB only up to 8 bits)."""
        return "OW" if self.vr == "OB" and self.bits > 8 else self.vr

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.frames, ROWS, COLUMNS) + ((self.samples,) if self.samples > 1 else ())

    @property
    def id(self) -> str:
        kind = "f" if self.vr in ("OF", "OD") else "s" if self.signed else "u"
        return f"{self.vr}_{self.bits:02d}{kind}_{self.samples}S_{self.frames}F"


# Bits Allocated is 1 or a multiple of 8 (PS3.3 Table C.7-11c): every one up to 64. numpy has no
# type for 24, 40, 48 and 56 bits, nor has fastdicom's or pydicom's pixel_array (a typed error):
# those are checked on their bytes. 32- and 64-bit floats are Float and Double Float Pixel Data.
CASES = (
    [Case(1, vr, frames=f) for vr in ("OW", "OB") for f in (1, 3)]
    + [
        Case(bits, vr, signed=s, frames=f)
        for bits, vr in ((8, "OW"), (8, "OB"), (16, "OW"), (16, "OB"), (32, "OW"), (32, "OB"), (64, "OW"))
        for s in (False, True)
        for f in (1, 3)
    ]
    + [Case(bits, "OW", frames=f) for bits in (24, 40, 48, 56) for f in (1, 3)]
    + [Case(8, "OW", frames=f, samples=3) for f in (1, 3)]
    + [Case(bits, vr, frames=f) for bits, vr in ((32, "OF"), (64, "OD")) for f in (1, 3)]
)


def _pixels(case: Case) -> tuple[np.ndarray | None, bytes]:
    """The pixels (None where numpy has no type) and their little-endian cells, padded to even length."""
    rng = np.random.default_rng(case.bits * 100 + case.frames * 10 + case.signed)
    n = int(np.prod(case.shape))
    arr: np.ndarray | None
    if case.bits == 1:
        arr = rng.integers(0, 2, n, dtype=np.uint8)
        cells = np.packbits(arr, bitorder="little").tobytes()
    elif case.vr in ("OF", "OD"):
        arr = (rng.standard_normal(n) * 1000).astype(f"<f{case.bits // 8}")
        cells = arr.tobytes()
    elif case.bits in (8, 16, 32, 64):
        dt = np.dtype(f"<{'i' if case.signed else 'u'}{case.bits // 8}")
        info = np.iinfo(dt)
        arr = rng.integers(info.min, info.max, n, dtype=dt, endpoint=True)
        cells = arr.tobytes()
    else:
        arr = None
        cells = rng.integers(0, 256, n * case.bits // 8, dtype=np.uint8).tobytes()
    if len(cells) % 2:
        cells += b"\0"
    return (None if arr is None else arr.reshape(case.shape)), cells


def _dataset(case: Case, cells: bytes) -> Dataset:
    ds = Dataset()
    ds.add_new("SOPClassUID", "UI", "1.2.840.10008.5.1.4.1.1.7")
    ds.add_new("SOPInstanceUID", "UI", "1.2.826.0.1.3680043.10.1400.9.1")
    ds.add_new("SamplesPerPixel", "US", case.samples)
    ds.add_new("PhotometricInterpretation", "CS", "RGB" if case.samples == 3 else "MONOCHROME2")
    if case.samples > 1:
        ds.add_new("PlanarConfiguration", "US", 0)
    ds.add_new("NumberOfFrames", "IS", str(case.frames))
    ds.add_new("Rows", "US", ROWS)
    ds.add_new("Columns", "US", COLUMNS)
    ds.add_new("BitsAllocated", "US", case.bits)
    if case.tag == byteorder.PIXEL_DATA:
        ds.add_new("BitsStored", "US", case.bits)
        ds.add_new("HighBit", "US", case.bits - 1)
        ds.add_new("PixelRepresentation", "US", int(case.signed))
    ds.add_new(case.tag, case.vr, cells)
    return ds


def _little_file(case: Case, cells: bytes) -> bytes:
    """An Explicit VR Little Endian file of the case, written by fastdicom.

    fastdicom writes OB Pixel Data of more than 8 bits as OW; the OB files are
    made by patching the VR of that one header (OB and OW headers have the same layout).
    """
    data = fastdicom.to_bytes(_dataset(case, cells), transfer_syntax=EXPLICIT)
    if case.vr != case.out_vr:
        head = b"\xe0\x7f\x10\x00OW\x00\x00"
        assert data.count(head) == 1
        data = data.replace(head, b"\xe0\x7f\x10\x00OB\x00\x00")
    return data


def _check_pixels(ds, case: Case, arr: np.ndarray | None) -> None:
    if arr is None:
        with pytest.raises(InvalidDicomError, match="Bits Allocated"):
            ds.pixels.array()
        return
    px = ds.pixels
    assert np.array_equal(px.array(), arr)
    for i in range(case.frames):
        assert np.array_equal(px.frame(i), arr[i])


def _as_array(cells: bytes, arr: np.ndarray) -> np.ndarray:
    if arr.dtype.itemsize == 1 and arr.size > len(cells):  # 1-bit
        bits = np.unpackbits(np.frombuffer(cells, np.uint8), bitorder="little")[: arr.size]
        return bits.reshape(arr.shape)
    return np.frombuffer(cells, dtype=arr.dtype.newbyteorder("<"), count=arr.size).reshape(arr.shape)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_fastdicom_converts_byte_order(case, kernel):
    arr, cells = _pixels(case)
    le = _little_file(case, cells)
    src = fastdicom.read(le)
    assert src[case.tag].vr == case.vr
    _check_pixels(src, case, arr)
    be = fastdicom.to_bytes(src, transfer_syntax=BIG)
    back = fastdicom.read(be)
    elem = back[case.tag]
    assert elem.vr == case.out_vr
    assert bytes(elem.raw) == pixel_order.big_endian_value(cells, case.out_vr)
    _check_pixels(back, case, arr)
    # The data set built in memory (bytes values in its own byte order, little endian) gives the same value.
    direct = fastdicom.read(fastdicom.to_bytes(_dataset(case, cells), transfer_syntax=BIG))
    assert bytes(direct[case.tag].raw) == bytes(elem.raw)
    # Through every uncompressed syntax and back: the same cells, the same pixels.
    for ts in UNCOMPRESSED:
        out = fastdicom.read(fastdicom.to_bytes(back, transfer_syntax=ts))
        e = out[case.tag]
        assert pixel_order.little_cells(e.raw, e.vr, out.is_little_endian) == cells, ts
        _check_pixels(out, case, arr)
        again = fastdicom.read(fastdicom.to_bytes(out, transfer_syntax=BIG))
        e = again[case.tag]  # OB comes back from implicit VR as OW (implicit VR cannot say OB)
        assert e.vr == (case.out_vr if ts != IMPLICIT else case.out_vr.replace("OB", "OW")), ts
        assert bytes(e.raw) == pixel_order.big_endian_value(cells, e.vr), ts
        _check_pixels(again, case, arr)


def _dcmconv(option: str, src, dst) -> None:
    r = subprocess.run([DCMCONV, option, str(src), str(dst)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


@pytest.mark.skipif(DCMCONV is None, reason="DCMTK's dcmconv not installed")
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_same_conversion_as_dcmtk(case, tmp_path):
    arr, cells = _pixels(case)
    le = tmp_path / "le.dcm"
    le.write_bytes(_little_file(case, cells))
    ours = tmp_path / "ours_be.dcm"
    fastdicom.write(ours, fastdicom.read(le), transfer_syntax=BIG)
    theirs = tmp_path / "dcmtk_be.dcm"
    _dcmconv("+tb", le, theirs)
    ds = fastdicom.read(theirs)
    e = ds[case.tag]
    if case.out_vr != case.vr:
        # DCMTK keeps the nonconformant OB and, OB being bytes, its bytes: the cells, least significant
        # byte first. We write OW. Both read back as the same pixels.
        assert e.vr == "OB" and bytes(e.raw) == cells
    else:
        assert e.vr == case.vr
        assert bytes(e.raw) == bytes(fastdicom.read(ours)[case.tag].raw)
    _check_pixels(ds, case, arr)
    # DCMTK's big endian, back to little endian by fastdicom; ours, by DCMTK.
    e = fastdicom.read(fastdicom.to_bytes(ds, transfer_syntax=EXPLICIT))[case.tag]
    assert (e.vr, bytes(e.raw)) == (case.out_vr, cells)
    back = tmp_path / "dcmtk_le.dcm"
    _dcmconv("+te", ours, back)
    e = fastdicom.read(back)[case.tag]
    assert (e.vr, bytes(e.raw)) == (case.out_vr, cells)


def _pydicom_array(data: bytes) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pds = pydicom.dcmread(io.BytesIO(data))
        pds.pixel_array_options(as_rgb=False)
        return pds.pixel_array


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_pydicom_reads_our_files(case):
    arr, cells = _pixels(case)
    if arr is None:
        pytest.skip(f"pydicom 3.0 has no pixel_array for Bits Allocated {case.bits} (nor has fastdicom)")
    src = fastdicom.read(_little_file(case, cells))
    be = fastdicom.to_bytes(src, transfer_syntax=BIG)
    theirs = _pydicom_array(be).reshape(arr.shape)
    if pixel_order.pydicom_reads_otherwise(case.tag, case.out_vr, case.bits, False):
        # 1-bit, 32- and 64-bit OW: pydicom reads unswapped bytes / units of Bits Allocated, the
        # standard 16-bit words. We follow the standard (and DCMTK, above).
        raw = fastdicom.read(be)[case.tag].raw
        assert np.array_equal(theirs, _as_array(pixel_order.pydicom_cells(raw, case.out_vr, case.bits, False), arr))
        assert not np.array_equal(theirs, arr)
    else:
        assert np.array_equal(theirs, arr)
    for ts in (IMPLICIT, EXPLICIT, DEFLATED):  # little endian: no disagreement
        data = fastdicom.to_bytes(fastdicom.read(be), transfer_syntax=ts)
        assert np.array_equal(_pydicom_array(data).reshape(arr.shape), arr), ts


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_we_read_pydicoms_big_endian_files(case):
    """pydicom writes big endian converting nothing: its users give it the pixels in the order it reads."""
    arr, cells = _pixels(case)
    if arr is None:
        pytest.skip(f"pydicom 3.0 has no pixel_array for Bits Allocated {case.bits}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pds = pydicom.dcmread(io.BytesIO(_little_file(case, cells)))
        value = pixel_order.pydicom_cells(cells, case.vr, case.bits, False)  # its reading is an involution
        pds[case.tag].value = value
        pds.file_meta.TransferSyntaxUID = BIG
        buf = io.BytesIO()
        pydicom.dcmwrite(buf, pds, implicit_vr=False, little_endian=False)
    assert np.array_equal(_pydicom_array(buf.getvalue()).reshape(arr.shape), arr)
    ours = fastdicom.read(buf.getvalue())
    assert ours[case.tag].vr == case.vr and bytes(ours[case.tag].raw) == value
    got = ours.pixels.array()
    if pixel_order.pydicom_reads_otherwise(case.tag, case.vr, case.bits, False):
        # Read by PS3.5 8.2 (DCMTK too), these bytes hold other pixels than pydicom meant.
        assert np.array_equal(got, _as_array(pixel_order.little_cells(value, case.vr, False), arr))
        assert not np.array_equal(got, arr)
    else:
        assert np.array_equal(got, arr)


def test_from_pydicom_keeps_a_big_endian_data_set_big_endian():
    cf = next((f for f in corpus_files() if f.path == "test_files/MR_small_bigendian.dcm"), None)
    path = cf.resolve() if cf is not None else None
    if path is None:
        pytest.skip("pydicom's MR_small_bigendian.dcm not installed")
    ref = fastdicom.read(path).pixel_array
    ds = fastdicom.from_pydicom(pydicom.dcmread(path))
    assert not ds.is_little_endian
    assert np.array_equal(ds.pixel_array, ref)
    for ts in UNCOMPRESSED:
        assert np.array_equal(fastdicom.read(fastdicom.to_bytes(ds, transfer_syntax=ts)).pixel_array, ref), ts


# -- the public corpus --------------------------------------------------------------------------

FILES = corpus_files()
#: Files fastdicom refuses (truncated, garbage lengths), as in tests/dataset/test_corpus.py.
MALFORMED = {
    "data_store/data/emri_small_jpeg_2k_lossless_too_short.dcm",
    "test_files/MR_truncated.dcm",
    "test_files/rtplan_truncated.dcm",
    "test_files/no_meta.dcm",
    "test_files/dicomdirtests/DICOMDIR-nooffset",
}
NATIVE = [f for f in FILES if f.row["transfer_syntax_uid"] in ("", *UNCOMPRESSED) and f.path not in MALFORMED]
ENCAPSULATED = [f for f in FILES if f.row["transfer_syntax_uid"] not in ("", *UNCOMPRESSED) and f.path not in MALFORMED]


def _resolve(cf):
    p = cf.resolve()
    if p is None:
        pytest.skip(f"{cf.where} file {cf.path} not installed")
    return p


def _pixels_or_none(ds):
    try:
        return ds.pixels.array() if ds.pixels is not None else None
    except (InvalidDicomError, FastDicomError):
        return None


def _diff(a, b, implicit: bool, path: str = "") -> list[str]:
    """Differences between a data set and its round trip (both in the same byte order).

    Group lengths are recomputed when re-encoding; implicit VR loses the VR of
    private elements (their bytes come back as UN, unswapped); Pixel Data is compared by its cells.
    """
    out = []
    tags = [e.tag for e in a]
    if tags != [e.tag for e in b]:
        return [f"{path}: tags differ: {sorted(set(tags) ^ {e.tag for e in b})}"]
    for ea in a:
        tag = ea.tag
        eb = b[tag]
        where = f"{path}({tag >> 16:04X},{tag & 0xFFFF:04X})"
        if tag & 0xFFFF == 0 or (implicit and tag >> 16 & 1):
            continue
        if ea.vr == "SQ" and eb.vr == "SQ":
            ia, ib = ea.value, eb.value
            if len(ia) != len(ib):
                out.append(f"{where}: {len(ia)} items != {len(ib)}")
            for k, (x, y) in enumerate(zip(ia, ib)):
                out += _diff(x, y, implicit, f"{where}[{k}].")
            continue
        if tag in byteorder.PIXEL_TAGS and not ea.is_undefined_length:
            ca = pixel_order.little_cells(ea.raw, ea.vr, a.is_little_endian)
            cb = pixel_order.little_cells(eb.raw, eb.vr, b.is_little_endian)
            if ca != cb:
                out.append(f"{where}: Pixel Data cells differ")
            continue
        if ea.vr != eb.vr and not implicit:
            out.append(f"{where}: VR {ea.vr} != {eb.vr}")
        elif ea.vr == eb.vr and bytes(ea.raw) != bytes(eb.raw):
            out.append(f"{where} {ea.vr}: {bytes(ea.raw)[:40]!r} != {bytes(eb.raw)[:40]!r}")
    return out


@pytest.mark.parametrize("cf", NATIVE, ids=lambda cf: cf.path)
def test_corpus_round_trip_through_every_uncompressed_syntax(cf):
    path = _resolve(cf)
    fd = fastdicom.read(path)
    before = _pixels_or_none(fd)
    src_ts = fd.transfer_syntax or EXPLICIT
    for ts in UNCOMPRESSED:
        out = fastdicom.read(fastdicom.to_bytes(fd, transfer_syntax=ts))
        assert out.transfer_syntax == ts
        if before is not None:
            assert np.array_equal(_pixels_or_none(out), before), ts
        again = fastdicom.read(fastdicom.to_bytes(out, transfer_syntax=src_ts))
        diffs = _diff(fd, again, implicit=ts == IMPLICIT or fd.is_implicit_vr)
        assert not diffs, f"through {ts}: " + "\n".join(diffs[:10])
        if before is not None:
            assert np.array_equal(_pixels_or_none(again), before), ts


def _items(raw, little: bool) -> list[bytes]:
    """The item values of an encapsulated value (without its delimiter), read by their headers."""
    fmt = "<HHL" if little else ">HHL"
    raw, pos, out = bytes(raw), 0, []
    while pos + 8 <= len(raw):
        group, element, n = struct.unpack_from(fmt, raw, pos)
        assert (group, element) == (0xFFFE, 0xE000)
        out.append(raw[pos + 8 : pos + 8 + n])
        pos += 8 + n
    assert pos == len(raw)
    return out


@pytest.mark.parametrize("cf", ENCAPSULATED, ids=lambda cf: cf.path)
def test_corpus_encapsulated_pixel_data_changes_only_its_item_headers(cf):
    """Encapsulated data sets in the other encodings, as raw data sets (no transfer syntax has them):
    item headers take the byte order, the items keep their bytes. The Basic Offset Table keeps its
    bytes too: fastdicom reads it little-endian, as every encapsulated syntax is."""
    fd = fastdicom.read(_resolve(cf))
    assert fd.is_little_endian  # every encapsulated syntax is (one file here is implicit VR all the same)
    elem = fd[byteorder.PIXEL_DATA] if byteorder.PIXEL_DATA in fd else None
    items = _items(elem.raw, True) if elem is not None and elem.is_undefined_length else None
    for little, explicit in ((False, True), (True, False)):
        data = b"".join(bytes(c) for c in encode_dataset(fd, little, explicit))
        try:
            out = fastdicom.read(data)
        except InvalidDicomError as exc:
            pytest.skip(f"its encoding cannot be detected as a raw data set: {exc.message}")
        assert (out.is_little_endian, out.is_implicit_vr) == (little, not explicit)
        if items is not None:
            assert out[byteorder.PIXEL_DATA].is_undefined_length
            assert _items(out[byteorder.PIXEL_DATA].raw, little) == items
        again = fastdicom.read(b"".join(bytes(c) for c in encode_dataset(out, True, not fd.is_implicit_vr)))
        diffs = _diff(fd, again, implicit=not explicit or fd.is_implicit_vr)
        assert not diffs, "\n".join(diffs[:10])
        if items is not None:
            assert bytes(again[byteorder.PIXEL_DATA].raw) == bytes(elem.raw)
