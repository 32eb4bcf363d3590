"""Differential tests: every public corpus file, fastdicom against pydicom 3."""

from __future__ import annotations

import io
import warnings

import pytest

import fastdicom
from fastdicom.dictionary.uid import encoding_of
from fastdicom.errors import InvalidDicomError

from ..corpus import corpus_files
from .compare import diff_datasets

pydicom = pytest.importorskip("pydicom")

FILES = corpus_files()
if not FILES:
    pytest.skip("the corpus list tests/corpus.csv is missing (ci/gen_corpus_table.py)", allow_module_level=True)

#: Files that are malformed on purpose; fastdicom refuses them with a typed error
#: (pydicom reads a truncated value, or reads past the end of a lying length).
MALFORMED = {
    "data_store/data/emri_small_jpeg_2k_lossless_too_short.dcm",  # file ends before the sequence delimiter
    "test_files/MR_truncated.dcm",  # Pixel Data length past the end of the file
    "test_files/rtplan_truncated.dcm",  # truncated mid-element
    "test_files/no_meta.dcm",  # a stray byte before the first element: garbage lengths
    "test_files/dicomdirtests/DICOMDIR-nooffset",  # last item's length runs 24 bytes past the file
}

#: Encapsulated data with Sequence Delimitation bytes inside a fragment: pydicom
#: searches for the delimiter bytes and cuts the value short; fastdicom follows
#: the fragment lengths (PS3.5 A.4) and keeps the whole value.
PIXEL_VALUE_DIFFERS = {"test_files/JPEG2000-embedded-sequence-delimiter.dcm"}


def _ids(cf):
    return cf.path


def _resolve(cf):
    p = cf.resolve()
    if p is None:
        pytest.skip(f"{cf.where} file {cf.path} not installed")
    return p


@pytest.mark.parametrize("cf", [f for f in FILES if f.path not in MALFORMED], ids=_ids)
def test_same_elements_as_pydicom(cf, backend):
    path = _resolve(cf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pd = pydicom.dcmread(path, force=True)
        fd = fastdicom.read(path, backend=backend)
        skip = frozenset({0x7FE00010}) if cf.path in PIXEL_VALUE_DIFFERS else frozenset()
        diffs = diff_datasets(fd, pd, skip=skip)
        if pd.file_meta is not None and len(pd.file_meta):
            assert fd.file_meta is not None
            diffs += diff_datasets(fd.file_meta, pd.file_meta, "meta:")
    assert not diffs, "\n".join(diffs[:20])
    assert fd.transfer_syntax is not None


@pytest.mark.parametrize("cf", [f for f in FILES if f.path in MALFORMED], ids=_ids)
def test_malformed_files_raise_typed_errors(cf, backend):
    path = _resolve(cf)
    with pytest.raises(InvalidDicomError) as info:
        ds = fastdicom.read(path, backend=backend)
        for elem in ds:
            _ = elem.value
    assert isinstance(info.value, ValueError)
    assert info.value.offset is not None


@pytest.mark.parametrize("cf", [f for f in FILES if f.path not in MALFORMED], ids=_ids)
def test_unmodified_round_trip_is_byte_exact(cf, backend, tmp_path):
    path = _resolve(cf)
    fd = fastdicom.read(path, backend=backend)
    original = path.read_bytes()
    if fd.preamble is None or fd.file_meta is None or fd.transfer_syntax == "1.2.840.10008.1.2.1.99":
        # Raw data sets gain File Meta; deflated ones are re-deflated: read back and compare instead.
        out = fastdicom.to_bytes(fd)
        back = fastdicom.read(out, backend=backend)
        assert [e.tag for e in back] == [e.tag for e in fd]
        return
    out = tmp_path / "out.dcm"
    fastdicom.write(out, fd)
    assert out.read_bytes() == original[: len(out.read_bytes())]
    assert len(out.read_bytes()) == fd._end
    buf = io.BytesIO()
    fastdicom.write(buf, fd)
    assert buf.getvalue() == out.read_bytes()


def _group_size(data: bytes, back, group: int) -> int:
    """Encoded size of a top-level group, from the bytes fastdicom wrote."""
    again = fastdicom.read(data)
    members = [e for e in again if e.tag >> 16 == group and e.tag & 0xFFFF]
    return sum(e._end - e._hdr for e in members)


CONVERSIONS = ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"]
UNCOMPRESSED_FILES = [
    f
    for f in FILES
    if f.path not in MALFORMED
    and f.row["transfer_syntax_uid"] in ("", *CONVERSIONS)
    and not f.row["known_issue"].startswith("MALFORMED")
]


@pytest.mark.parametrize("ts", CONVERSIONS)
@pytest.mark.parametrize("cf", UNCOMPRESSED_FILES, ids=_ids)
def test_converted_files_read_back_by_pydicom(cf, ts, backend, monkeypatch):
    path = _resolve(cf)
    # Implicit VR loses private VRs; pydicom then guesses them from its private
    # dictionary and may find a wrong length: let it fall back to UN.
    monkeypatch.setattr(pydicom.config, "convert_wrong_length_to_UN", True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fd = fastdicom.read(path, backend=backend)
        data = fastdicom.to_bytes(fd, transfer_syntax=ts)
        back = pydicom.dcmread(io.BytesIO(data), force=True)
        assert back.file_meta.TransferSyntaxUID == ts
        diffs = diff_datasets(
            fd,
            back,
            implicit=ts == "1.2.840.10008.1.2",
            swapped=fd.is_little_endian != back.is_little_endian,
            group_lengths=False,
        )
        # A converted data set is re-encoded and its group lengths recomputed
        # (an unchanged one keeps its bytes, wrong group lengths included).
        recoded = encoding_of(ts)[:2] != encoding_of(fd.transfer_syntax)[:2]
        for elem in back if recoded else ():
            if elem.tag & 0xFFFF == 0 and elem.tag >> 16 != 0x0002:
                value = elem.value
                if isinstance(value, bytes):  # a private group length read back as UN (implicit VR)
                    value = int.from_bytes(value, "little" if back.is_little_endian else "big")
                assert value == _group_size(data, back, elem.tag >> 16)
    assert not diffs, "\n".join(diffs[:20])
    # and fastdicom reads its own output identically
    again = fastdicom.read(data, backend=backend)
    assert [e.tag for e in again] == [e.tag for e in fd]
