"""Frames: pydicom's reference hashes, zero-copy views, the encapsulated frame index."""

from __future__ import annotations

import hashlib
import struct
import warnings

import numpy as np
import psutil
import pytest

import fastdicom
from fastdicom.errors import InvalidDicomError
from fastdicom.pixels import NoDecoderError

from ..corpus import corpus_files
from ..dataset import pixel_order

pydicom = pytest.importorskip("pydicom")

UNCOMPRESSED = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99", "")
FILES = corpus_files()
RLE = "1.2.840.10008.1.2.5"
DECODABLE = [f for f in FILES if f.row["transfer_syntax_uid"] in (*UNCOMPRESSED, RLE) and f.row["decode"] == "yes"]
ENCAPSULATED = [f for f in FILES if f.row["transfer_syntax_uid"] not in (*UNCOMPRESSED, RLE) and f.row["Rows"]]
RLE_FILES = [f for f in FILES if f.row["transfer_syntax_uid"] == RLE]


def _resolve(cf):
    p = cf.resolve()
    if p is None:
        pytest.skip(f"{cf.where} file {cf.path} not installed")
    return p


def _sha(arr: np.ndarray) -> str:
    little = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
    return hashlib.sha256(np.ascontiguousarray(little).tobytes()).hexdigest()


def _cells_as_array(cells: bytes, px, like: np.ndarray) -> np.ndarray:
    """Little-endian cells arranged as ``pixel_array`` arranges them (frames, rows, columns[, samples])."""
    flat = np.frombuffer(cells, dtype=like.dtype.newbyteorder("<"), count=like.size)
    if px.samples > 1 and px.planar == 1:
        return flat.reshape(-1, px.samples, px.rows, px.columns).transpose(0, 2, 3, 1).reshape(like.shape)
    return flat.reshape(like.shape)


@pytest.mark.parametrize("cf", DECODABLE, ids=lambda cf: cf.path)
def test_pixel_array_matches_pydicom_reference_hash(cf, backend):
    ds = fastdicom.read(_resolve(cf), backend=backend)
    arr = ds.pixel_array
    assert str(arr.dtype) == cf.row["decoded_dtype"]
    assert "x".join(map(str, arr.shape)) == cf.row["decoded_shape"]
    if pixel_order.dataset_read_otherwise(ds):
        # Big-endian 32-bit OW (pydicom's rtdose_expb.dcm) or OB of more than 8 bits: pydicom's
        # reference reads Bits Allocated-wide units; PS3.5 8.2 orders OW in 16-bit words and leaves
        # OB alone, as DCMTK does (tests/dataset/test_byteorder.py). We follow the standard.
        px, raw = ds.pixels, ds.pixels._elem.raw
        vr, ba = px._elem.vr, px.bits_allocated
        assert _sha(arr) == _sha(_cells_as_array(pixel_order.little_cells(raw, vr, False), px, arr))
        theirs = _cells_as_array(pixel_order.pydicom_cells(raw, vr, ba, False), px, arr)
        assert _sha(theirs) == cf.row["decoded_sha256"]
    else:
        assert _sha(arr) == cf.row["decoded_sha256"]
    frames = ds.pixels
    assert frames.shape[0] == len(frames) and frames.array().shape == frames.shape


@pytest.mark.parametrize("cf", ENCAPSULATED, ids=lambda cf: cf.path)
def test_encoded_frames_match_pydicom(cf, backend):
    from pydicom.encaps import generate_frames

    path = _resolve(cf)
    ds = fastdicom.read(path, backend=backend)
    frames = ds.pixels
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pd = pydicom.dcmread(path, force=True)
        eot = (pd.ExtendedOffsetTable, pd.ExtendedOffsetTableLengths) if "ExtendedOffsetTable" in pd else None
        ref = list(generate_frames(pd.PixelData, number_of_frames=len(frames), extended_offsets=eot))
    assert [bytes(frames.encoded_frame(i)) for i in range(len(frames))] == ref
    try:  # decoded by tests/pixels/test_codecs.py; here only: a typed outcome
        frames.frame(0)
    except (NoDecoderError, InvalidDicomError):
        pass


def test_uncompressed_frame_is_a_view_of_the_mapping(backend):
    path = next((f.resolve() for f in FILES if f.path.endswith("emri_small.dcm")), None)
    if path is None:
        pytest.skip("emri_small.dcm not installed")
    ds = fastdicom.read(path, backend=backend)
    frames = ds.pixels
    assert len(frames) == 10 and frames.shape == (10, 64, 64)
    f3 = frames.frame(3)
    assert not f3.flags.owndata and not f3.flags.writeable
    assert np.shares_memory(f3, frames.array())
    ref = pydicom.dcmread(path).pixel_array[3]
    assert np.array_equal(f3, ref)
    assert [np.array_equal(a, b) for a, b in zip(frames, frames.array())] == [True] * 10


def _multiframe_header(frames: int, rows: int, cols: int) -> bytes:
    ds = fastdicom.Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2.1"
    ds.SOPInstanceUID = "1.2.3.4.5"
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, cols, frames
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    return fastdicom.to_bytes(ds, transfer_syntax="1.2.840.10008.1.2.1")


def test_multigigabyte_sparse_file_keeps_memory_small(tmp_path, backend):
    frames, rows, cols = 4096, 512, 512  # 2 GiB of Pixel Data, a sparse file
    length = frames * rows * cols * 2
    path = tmp_path / "big.dcm"
    with open(path, "wb") as f:
        f.write(_multiframe_header(frames, rows, cols))
        f.write(struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OW", 0, length))
        start = f.tell()
        f.seek(start + 250 * rows * cols * 2)
        f.write(np.full(rows * cols, 7, dtype="<u2").tobytes())
        f.truncate(start + length)
    rss = psutil.Process().memory_info().rss
    ds = fastdicom.read(path, backend=backend)
    px = ds.pixels
    assert px.shape == (frames, rows, cols)
    f250 = px.frame(250)
    assert int(f250[0, 0]) == 7 and int(px.frame(4095)[511, 511]) == 0
    assert px.array().shape == (frames, rows, cols)  # a view: nothing read
    assert psutil.Process().memory_info().rss - rss < 64 * 2**20


def _encapsulated(fragments: list[bytes], bot: bytes, frames: int) -> bytes:
    head = _multiframe_header(frames, 2, 2)
    head = head.replace(b"1.2.840.10008.1.2.1\x00", b"1.2.840.10008.1.2.5\x00")
    body = struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OB", 0, 0xFFFFFFFF)
    body += struct.pack("<HHL", 0xFFFE, 0xE000, len(bot)) + bot
    for frag in fragments:
        body += struct.pack("<HHL", 0xFFFE, 0xE000, len(frag)) + frag
    body += struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
    return head + body


def test_basic_offset_table_groups_fragments(backend):
    frags = [b"AAAA", b"BB\xff\xd9", b"CCCC"]
    bot = struct.pack("<2L", 0, 24)  # frame 1 starts at the third fragment's item tag
    ds = fastdicom.read(_encapsulated(frags, bot, 2), backend=backend)
    assert ds.transfer_syntax == "1.2.840.10008.1.2.5"
    px = ds.pixels
    assert bytes(px.encoded_frame(0)) == b"AAAABB\xff\xd9" and bytes(px.encoded_frame(1)) == b"CCCC"
    assert isinstance(px.encoded_frame(1), memoryview)


def test_markers_split_frames_without_table(backend):
    frags = [b"AA", b"B\xff\xd9\x00", b"CC\xff\xd9"]
    px = fastdicom.read(_encapsulated(frags, b"", 2), backend=backend).pixels
    assert [bytes(px.encoded_frame(i)) for i in range(2)] == [b"AAB\xff\xd9\x00", b"CC\xff\xd9"]


@pytest.mark.parametrize(
    "bot, frames",
    [
        (struct.pack("<3L", 0, 12, 24), 2),  # wrong number of entries
        (struct.pack("<2L", 12, 0), 2),  # not increasing
        (b"\x00\x00\x00", 2),  # not a multiple of 4
        (struct.pack("<2L", 0, 5000), 2),  # past the end
    ],
)
def test_broken_offset_tables_raise_typed_errors(bot, frames, backend):
    px = fastdicom.read(_encapsulated([b"AAAA", b"BBBB", b"CCCC"], bot, frames), backend=backend).pixels
    with pytest.raises(InvalidDicomError):
        px.encoded_frame(0)


def test_no_pixel_data_is_none(backend):
    ds = fastdicom.Dataset()
    ds.PatientName = "A"
    assert ds.pixels is None
    with pytest.raises(AttributeError):
        _ = ds.pixel_array


@pytest.mark.parametrize("ts", ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"])
def test_lying_number_of_frames_allocates_nothing(ts, backend):
    head = _multiframe_header(2_000_000_000, 512, 512)
    if ts != "1.2.840.10008.1.2.1":
        ds = fastdicom.read(head)
        head = fastdicom.to_bytes(ds, transfer_syntax=ts)
    fmt = "<HH2sHL" if ts.endswith(".1") else ">HH2sHL"
    data = head + struct.pack(fmt, 0x7FE0, 0x0010, b"OW", 0, 1024) + b"\0" * 1024
    px = fastdicom.read(data, backend=backend).pixels
    with pytest.raises(InvalidDicomError):
        px.array()
    with pytest.raises(fastdicom.pixels.DecodeError):
        fastdicom.decode([data])


def test_lying_rle_geometry_allocates_nothing(backend):
    frag = struct.pack("<LL", 1, 64) + b"\0" * 56 + b"\x81\x00"
    data = _encapsulated([frag], b"", 1)
    data = data.replace(
        struct.pack("<HH2sH", 0x0028, 0x0010, b"US", 2) + struct.pack("<H", 2),
        struct.pack("<HH2sH", 0x0028, 0x0010, b"US", 2) + struct.pack("<H", 60000),
    )
    px = fastdicom.read(data, backend=backend).pixels
    assert px.rows == 60000
    with pytest.raises(InvalidDicomError):
        px.array()
