"""The native decoders (OpenJPEG for JPEG 2000 / HTJ2K, CharLS for JPEG-LS, libjpeg-turbo for JPEG) against
imagecodecs, and hostile input."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastdicom
from fastdicom.dictionary import uid
from fastdicom.pixels import codecs as fc

from ..conftest import implementations
from ..corpus import corpus_files
from .frame_specs import decode_spec, options, spec_of

NATIVE = dict(implementations("jpeg2000")).get("rust")
pytestmark = pytest.mark.skipif(
    NATIVE is None, reason="native JPEG 2000 decoder not built (or FASTDICOM_BACKEND=python)"
)
TWIN = dict(implementations("jpeg2000")).get("python")

J2K = [
    f
    for f in corpus_files()
    if f.row["transfer_syntax_uid"] in fc.CAPABILITY
    and fc.CAPABILITY[f.row["transfer_syntax_uid"]] in ("jpeg2000", "htj2k")
    and f.row["decode"] == "yes"
]
JLS = [
    f
    for f in corpus_files()
    if fc.CAPABILITY.get(f.row["transfer_syntax_uid"]) == "jpegls" and f.row["decode"] == "yes"
]
JPEG = [
    f for f in corpus_files() if fc.CAPABILITY.get(f.row["transfer_syntax_uid"]) == "jpeg" and f.row["decode"] == "yes"
]


def _frames(cf):
    p = cf.resolve()
    if p is None:
        pytest.skip(f"{cf.path} not installed")
    ds = fastdicom.read(p)
    px = ds.pixels
    return ds, px, [bytes(px.encoded_frame(k)) for k in range(min(px.number_of_frames, 4))]


@pytest.mark.skipif(TWIN is None, reason="imagecodecs not installed")
@pytest.mark.parametrize("cf", J2K, ids=lambda cf: cf.path)
def test_native_and_imagecodecs_give_the_same_samples(cf):
    _ds, px, frames = _frames(cf)
    for frame in frames:
        ours = NATIVE.jpeg2000_decode(frame, spec_of(px))
        theirs = np.asarray(TWIN.jpeg2000_decode(frame, spec_of(px)))
        if theirs.ndim == 3 and theirs.shape[-1] == 1:
            theirs = theirs[..., 0]
        assert ours.shape == theirs.shape
        assert ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.skipif(TWIN is None, reason="imagecodecs not installed")
@pytest.mark.parametrize("cf", JLS, ids=lambda cf: cf.path)
def test_native_jpegls_and_imagecodecs_give_the_same_samples(cf):
    _ds, px, frames = _frames(cf)
    for frame in frames:
        ours = NATIVE.jpegls_decode(frame, spec_of(px))
        theirs = np.asarray(TWIN.jpegls_decode(frame, spec_of(px)))
        if theirs.ndim == 3 and theirs.shape[-1] == 1:
            theirs = theirs[..., 0]
        np.testing.assert_array_equal(ours, theirs.astype(ours.dtype))


def test_threads_give_the_same_samples():
    cf = next((f for f in J2K if f.resolve() and f.row["transfer_syntax_uid"] == uid.JPEG2000Lossless), None)
    if cf is None:
        pytest.skip("no JPEG 2000 lossless file installed")
    _ds, px, frames = _frames(cf)
    one = NATIVE.jpeg2000_decode(frames[0], spec_of(px))
    four = NATIVE.jpeg2000_decode(frames[0], decode_spec(px._frame_shape(), px.dtype, threads=4))
    np.testing.assert_array_equal(one, four)


def test_a_header_that_disagrees_with_the_data_set_is_refused_before_decoding():
    cf = next((f for f in J2K if f.resolve()), None)
    if cf is None:
        pytest.skip("no JPEG 2000 file installed")
    _ds, px, frames = _frames(cf)
    rows, cols = px._frame_shape()[:2]
    with pytest.raises(ValueError, match="header says"):
        NATIVE.jpeg2000_decode(frames[0], decode_spec((rows + 1, cols), px.dtype))


HOSTILE = textwrap.dedent(
    """
    import random, sys
    from fastdicom import _rust
    frame = open(sys.argv[1], "rb").read()
    rows, cols, samples = map(int, sys.argv[3:6])
    if sys.argv[2] == "jpeg_decode_into":
        out = bytearray(rows * cols * samples * 2)
        def fn(data, rows, cols, samples):
            return _rust.jpeg_decode_into(data, out, rows, cols, samples, 2, False, False)
    else:
        fn = getattr(_rust, sys.argv[2])
    rng = random.Random(1234)
    cases = [b"", frame[:4], frame[:2] + bytes(200) + b"\\xff\\xd9", bytes(rng.randrange(256) for _ in range(4096))]
    for cut in (10, 50, len(frame) // 2, len(frame) - 3):
        cases.append(frame[:cut] + b"\\xff\\xd9")  # truncated, with a forged end marker
    for _ in range(300):
        b = bytearray(frame)
        for _ in range(rng.randrange(1, 8)):
            b[rng.randrange(min(len(b), 400))] = rng.randrange(256)  # headers and first packets
        if rng.random() < 0.3:
            b[rng.randrange(len(b))] = rng.randrange(256)  # anywhere in the entropy-coded data
        cases.append(bytes(b))
    ok = bad = 0
    for data in cases:
        try:
            fn(data, rows, cols, samples)
            ok += 1
        except ValueError:
            bad += 1
    print(ok, bad)
    """
)


@pytest.mark.parametrize("kind", ["jpeg2000", "htj2k", "jpegls", "jpeg"])
def test_hostile_codestreams_raise_value_error_and_never_crash(tmp_path, kind):
    files = {"jpegls": JLS, "jpeg": JPEG}.get(kind, J2K)
    cf = next((f for f in files if fc.CAPABILITY[f.row["transfer_syntax_uid"]] == kind and f.resolve()), None)
    if cf is None:
        pytest.skip(f"no {kind} file installed")
    _ds, px, frames = _frames(cf)
    shape = px._frame_shape()
    path = tmp_path / "frame.bin"
    path.write_bytes(frames[0])
    samples = shape[2] if len(shape) > 2 else 1
    fn = {"jpegls": "jls_decode", "jpeg": "jpeg_decode_into"}.get(kind, "j2k_decode")
    # In a child process: a native abort fails this test, not the run.
    r = subprocess.run(
        [sys.executable, "-c", HOSTILE, str(path), fn, str(shape[0]), str(shape[1]), str(samples)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    ok, bad = map(int, r.stdout.split())
    assert bad >= 5 and ok + bad == 308


def test_truncated_frame_is_refused_through_the_data_set():
    cf = next((f for f in J2K if f.resolve()), None)
    if cf is None:
        pytest.skip("no JPEG 2000 file installed")
    ds, px, frames = _frames(cf)
    out = np.empty(px._frame_shape(), dtype=px.dtype)
    with pytest.raises(fastdicom.errors.InvalidDicomError):
        fc.decode_frame(frames[0][: len(frames[0]) // 2], fc.DecodeFrame.of(px, out))


@pytest.mark.skipif(TWIN is None, reason="imagecodecs not installed")
@pytest.mark.parametrize("cf", JPEG, ids=lambda cf: cf.path)
def test_native_jpeg_and_imagecodecs_give_the_same_samples(cf):
    """Both are libjpeg-turbo 3.1: every process, every colour decision, both colour outputs, bit for bit."""
    _ds, px, frames = _frames(cf)
    for frame in frames:
        for as_rgb in (True, False) if px.samples == 3 else (True,):
            ours = NATIVE.jpeg_decode(frame, spec_of(px, as_rgb=as_rgb))
            try:
                theirs = np.asarray(TWIN.jpeg_decode(frame, spec_of(px, as_rgb=as_rgb)))
            except ValueError as exc:
                pytest.skip(f"imagecodecs cannot: {exc}")
            if theirs.ndim == 3 and theirs.shape[-1] == 1:
                theirs = theirs[..., 0]
            assert ours.shape == theirs.shape
            np.testing.assert_array_equal(ours, theirs.astype(ours.dtype))


def test_jpeg_decodes_into_the_callers_array_and_widens_8_bit_samples():
    cf = next((f for f in JPEG if f.resolve() and f.row["BitsAllocated"] == "8"), None)
    if cf is None:
        pytest.skip("no 8-bit JPEG file installed")
    _ds, px, frames = _frames(cf)
    shape = px._frame_shape()
    narrow = decode_spec(shape, np.uint8, photometric=px.photometric)
    assert NATIVE.jpeg_decode(frames[0], narrow) is narrow.out
    wide = decode_spec(shape, np.uint16, photometric=px.photometric)
    assert NATIVE.jpeg_decode(frames[0], wide) is wide.out
    np.testing.assert_array_equal(wide.out, narrow.out)
    assert narrow.out.any()
    with pytest.raises(ValueError, match="header says"):
        NATIVE.jpeg_decode(frames[0], decode_spec((shape[0] + 1, *shape[1:]), np.uint8, photometric=px.photometric))


def test_jpeg_truncation_and_corruption_are_errors_not_grey_pixels():
    from fastdicom import _rust

    frame = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) % 4096
    for lossless, bits, arr in ((True, 12, frame), (False, 8, (frame % 256).astype(np.uint8))):
        cs = NATIVE.jpeg_encode(arr, options(bits, lossless=lossless))
        out = bytearray(64 * 64 * 2)
        _rust.jpeg_decode_into(cs, out, 64, 64, 1, 2, False, False)
        for cut in (len(cs) // 3, len(cs) // 2, len(cs) - 6):
            with pytest.raises(ValueError, match="truncated"):  # no EOI: refused before libjpeg runs
                _rust.jpeg_decode_into(cs[:cut], out, 64, 64, 1, 2, False, False)
            # a forged EOI after the cut: libjpeg's premature end, an error rather than grey rows
            with pytest.raises(ValueError, match="Premature end|premature end|Corrupt"):
                _rust.jpeg_decode_into(cs[:cut] + b"\xff\xd9", out, 64, 64, 1, 2, False, False)


def test_progressive_jpeg_is_refused():
    """Progressive (and arithmetic) coding is no process of the DICOM JPEG syntaxes, and a cut stream decodes
    silently: refused by the native decoder."""
    image = pytest.importorskip("PIL.Image")
    import io

    buf = io.BytesIO()
    image.fromarray((np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64)).save(buf, "JPEG", progressive=True)
    with pytest.raises(ValueError, match="progressive"):
        NATIVE.jpeg_decode(buf.getvalue(), decode_spec((64, 64), np.uint8, photometric="MONOCHROME2"))
