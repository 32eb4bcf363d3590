"""Compressed transfer syntaxes: every decodable corpus file against pydicom's reference hashes."""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import warnings
import zlib

import numpy as np
import pytest

import fastdicom
from fastdicom import _backends
from fastdicom.dictionary import uid
from fastdicom.errors import InvalidDicomError
from fastdicom.pixels import NoDecoderError
from fastdicom.pixels import codecs as fc

from ..corpus import corpus_files

pydicom = pytest.importorskip("pydicom")
from pydicom import pixels as pydicom_pixels  # noqa: E402

FILES = [f for f in corpus_files() if f.row["transfer_syntax_uid"] in fc.CAPABILITY and f.row["Rows"]]
DECODABLE = [f for f in FILES if f.row["decode"] == "yes"]


def _have(cap: str) -> bool:
    try:
        _backends.resolve(cap)
        return True
    except fastdicom.errors.BackendError:
        return False


def _resolve(cf):
    p = cf.resolve()
    if p is None:
        pytest.skip(f"{cf.where} file {cf.path} not installed")
    if not _have(fc.CAPABILITY[cf.row["transfer_syntax_uid"]]):
        pytest.skip("no codec installed for " + cf.row["transfer_syntax_uid"])
    return p


def _sha(arr: np.ndarray) -> str:
    little = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
    return hashlib.sha256(np.ascontiguousarray(little).tobytes()).hexdigest()


DCMDJPEG = next((p for p in ("/usr/bin/dcmdjpeg", shutil.which("dcmdjpeg")) if p and os.path.exists(p)), None)


def lossy_bound(cf) -> int:
    """How far a lossy decode may be from the reference (../shared/corpus/README.md): libjpeg and libjpeg-turbo
    differ by 1-3, and by up to 8 where 4:2:2 chroma is upsampled; JPEG 2000 decoders round the irreversible
    wavelet by at most 1; JPEG-LS near-lossless decoding is exact."""
    capability = fc.CAPABILITY[cf.row["transfer_syntax_uid"]]
    if capability == "jpeg":
        return 8 if cf.row["PhotometricInterpretation"] == "YBR_FULL_422" else 3
    return 1 if capability in ("jpeg2000", "htj2k") else 0


def reference_pixels(cf, path, tmp_path, *, as_rgb: bool = True) -> np.ndarray:
    """The reference the corpus hash was made from, decoded here: pydicom's pixels where they give the listed
    hash, else DCMTK's decode of a JPEG file; skip (saying why) when neither can be had here."""
    want = cf.row["decoded_sha256" if as_rgb else "decoded_raw_sha256"]
    why = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ref = pydicom_pixels.pixel_array(pydicom.dcmread(path, force=True), as_rgb=as_rgb)
        except (RuntimeError, NotImplementedError, ValueError) as exc:  # no pydicom plugin decodes it here
            why.append(f"pydicom cannot decode it here ({str(exc).splitlines()[0]})")
        else:
            if _sha(ref) == want:
                return ref
            why.append("pydicom's pixels here are not the listed reference")
    if DCMDJPEG is not None and fc.CAPABILITY[cf.row["transfer_syntax_uid"]] == "jpeg":
        out = tmp_path / "dcmdjpeg.dcm"
        args = [DCMDJPEG, *([] if as_rgb else ["+cn"]), str(path), str(out)]  # +cn: keep the colour space
        r = subprocess.run(args, capture_output=True, text=True, timeout=120)
        if r.returncode == 0:
            return fastdicom.read(out).pixel_array
        why.append(f"dcmdjpeg cannot ({r.stderr.strip()[:100]})")
    pytest.skip("lossy, and no reference decoder here: " + "; ".join(why))


def assert_matches_reference(cf, arr, path, tmp_path, *, as_rgb: bool = True) -> None:
    """Bit for bit the listed hash, or, for a lossy syntax, within lossy_bound of the reference pixels."""
    if _sha(arr) == cf.row["decoded_sha256" if as_rgb else "decoded_raw_sha256"]:
        return
    assert cf.row["transfer_syntax_uid"] in fc.LOSSY, "lossless data must match pydicom bit for bit"
    ref = reference_pixels(cf, path, tmp_path, as_rgb=as_rgb)
    assert arr.shape == ref.shape and arr.dtype == ref.dtype
    diff = int(np.abs(arr.astype(np.int64) - ref.astype(np.int64)).max())
    assert diff <= lossy_bound(cf), f"lossy decode differs from the reference by {diff} > {lossy_bound(cf)}"


@pytest.mark.parametrize("cf", DECODABLE, ids=lambda cf: cf.path)
def test_pixel_array_matches_pydicom(cf, backend, tmp_path):
    path = _resolve(cf)
    ds = fastdicom.read(path, backend=backend)
    arr = ds.pixel_array
    assert str(arr.dtype) == cf.row["decoded_dtype"]
    assert "x".join(map(str, arr.shape)) == cf.row["decoded_shape"]
    assert_matches_reference(cf, arr, path, tmp_path)


def test_missing_codec_names_what_to_install(monkeypatch):
    cf = next((f for f in DECODABLE if f.row["transfer_syntax_uid"] == uid.JPEGLSLossless and f.resolve()), None)
    if cf is None:
        pytest.skip("no JPEG-LS file installed")
    monkeypatch.setitem(_backends.REGISTRY, "jpegls", [("python", "fastdicom.no_such_module", "jpegls_decode")])
    _backends.refresh()
    try:
        ds = fastdicom.read(cf.resolve())
        with pytest.raises(NoDecoderError, match="pip install imagecodecs"):
            _ = ds.pixel_array
        assert fastdicom.backend_info()["jpegls"] == "missing"
    finally:
        _backends.refresh()


def _first_of(ts: str):
    """The first decodable listed file of a transfer syntax, one that pip installs where the list has one."""
    files = [f for f in DECODABLE if f.row["transfer_syntax_uid"] == ts]
    return sorted(files, key=lambda f: f.where == "shared")[0]


@pytest.mark.parametrize(
    "cf",
    [
        pytest.param(_first_of(ts), id=name)
        for name, ts in (
            ("JPEGLSLossless", uid.JPEGLSLossless),
            ("JPEG2000Lossless", uid.JPEG2000Lossless),
            ("JPEGLosslessSV1", uid.JPEGLosslessSV1),
            ("JPEGBaseline8Bit", uid.JPEGBaseline8Bit),
        )
    ],
)
def test_truncated_codestreams_raise(cf):
    ds = fastdicom.read(_resolve(cf))
    frame = bytes(ds.pixels.encoded_frame(0))
    out = np.empty(ds.pixels._frame_shape(), dtype=ds.pixels.dtype)
    for cut in (0, 10, len(frame) // 3, len(frame) - 40):
        with pytest.raises(InvalidDicomError):
            fc.decode_frame(frame[:cut], fc.DecodeFrame.of(ds.pixels, out))
    fc.decode_frame(frame, fc.DecodeFrame.of(ds.pixels, out))  # the whole frame decodes
    assert _sha(out) == _sha(fastdicom.read(cf.resolve()).pixels.frame(0)) and out.any()


def _deflated_image_file(frames: np.ndarray, encoded: list[bytes] | None = None) -> bytes:
    """A minimal Part 10 file in Deflated Image Frame Compression (one fragment per frame)."""
    ts = b"1.2.840.10008.1.2.8.1\0"
    meta = struct.pack("<HH2sH", 2, 0x10, b"UI", len(ts)) + ts
    out = bytes(128) + b"DICM" + struct.pack("<HH2sHL", 2, 0, b"UL", 4, len(meta)) + meta

    def el(tag, vr, value):
        return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr, len(value)) + value

    n, rows, cols = frames.shape
    out += el(0x00280002, b"US", struct.pack("<H", 1)) + el(0x00280004, b"CS", b"MONOCHROME2 ")
    nf = str(n).encode()
    out += el(0x00280008, b"IS", nf + b" " * (len(nf) % 2))
    out += el(0x00280010, b"US", struct.pack("<H", rows)) + el(0x00280011, b"US", struct.pack("<H", cols))
    out += el(0x00280100, b"US", struct.pack("<H", 16)) + el(0x00280101, b"US", struct.pack("<H", 16))
    out += el(0x00280102, b"US", struct.pack("<H", 15)) + el(0x00280103, b"US", struct.pack("<H", 1))
    out += struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OB", 0, 0xFFFFFFFF) + struct.pack("<HHL", 0xFFFE, 0xE000, 0)
    for k, f in enumerate(frames):
        c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        data = encoded[k] if encoded else c.compress(f.astype("<i2").tobytes()) + c.flush()
        data += b"\0" * (len(data) % 2)
        out += struct.pack("<HHL", 0xFFFE, 0xE000, len(data)) + data
    return out + struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)


def test_deflated_image_frame_compression(backend):
    frames = (np.arange(3 * 8 * 10, dtype=np.int64).reshape(3, 8, 10) * 37 - 500).astype("<i2")
    ds = fastdicom.read(_deflated_image_file(frames), backend=backend)
    assert np.array_equal(ds.pixels.array(), frames)
    assert np.array_equal(ds.pixel_array, frames)
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    good = c.compress(frames[0].tobytes()) + c.flush()
    for broken in (b"\xff" * 40, good[: len(good) // 2], zlib.compress(bytes(10_000))):  # garbage, short, too long
        with pytest.raises(InvalidDicomError):
            _ = fastdicom.read(_deflated_image_file(frames[:1], [broken]), backend=backend).pixel_array


RAW = [f for f in DECODABLE if f.row["decoded_raw_sha256"] and f.row["transfer_syntax_uid"] in (uid.JPEGBaseline8Bit,)]


@pytest.mark.parametrize("cf", RAW, ids=lambda cf: cf.path)
def test_keep_the_stored_colour_space(cf, tmp_path):
    """pixel_array_options(as_rgb=False): JPEG YCbCr frames stay YCbCr, as pydicom's raw reference."""
    path = _resolve(cf)
    ds = fastdicom.read(path)
    ds.pixel_array_options(as_rgb=False)
    arr = ds.pixel_array
    assert_matches_reference(cf, arr, path, tmp_path, as_rgb=False)
    assert not np.array_equal(arr, fastdicom.read(path).pixel_array), "the frames were converted to RGB"


def test_number_of_frames_beyond_the_fragments_is_refused_before_allocating():
    cf = next((f for f in DECODABLE if f.row["transfer_syntax_uid"] == uid.JPEGBaseline8Bit and f.resolve()), None)
    if cf is None:
        pytest.skip("no JPEG file installed")
    ds = fastdicom.read(cf.resolve())
    ds.NumberOfFrames = 10_000_000
    with pytest.raises(InvalidDicomError, match="fragments"):
        ds.pixels.array()


GREY_JPEG = [
    f for f in DECODABLE if fc.CAPABILITY[f.row["transfer_syntax_uid"]] == "jpeg" and f.row["SamplesPerPixel"] == "1"
]


@pytest.mark.skipif(DCMDJPEG is None, reason="DCMTK's dcmdjpeg not installed")
@pytest.mark.parametrize("cf", GREY_JPEG, ids=lambda cf: cf.path)
def test_grey_jpeg_matches_dcmtk_bit_for_bit(cf, tmp_path):
    """Every JPEG process against DCMTK's IJG decoder, lossy ones included (pydicom's reference for
    JPGExtended comes from another 12-bit decoder and differs in rounding; DCMTK's does not)."""
    path = _resolve(cf)
    out = tmp_path / "raw.dcm"
    r = subprocess.run([DCMDJPEG, str(path), str(out)], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        pytest.skip(f"dcmdjpeg cannot: {r.stderr.strip()[:200]}")
    ours = fastdicom.read(path).pixel_array
    theirs = fastdicom.read(out).pixel_array
    np.testing.assert_array_equal(ours, theirs)
