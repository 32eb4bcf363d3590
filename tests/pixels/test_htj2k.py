"""HTJ2K (JPEG 2000 Part 15): OpenJPH through fastdicom._cy._openjph, OpenJPEG in Rust and the imagecodecs twins.

Every implementation of the registry's ``htj2k`` and ``htj2k_encode``
capabilities is run (only the Python ones under FASTDICOM_BACKEND=python):
corpus files to their reference hashes, random frames round trip exactly,
our codestreams read by other decoders, hostile codestreams raise and never
crash, and transcoding to .201, .202 and .203 and back.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import textwrap
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastdicom
from fastdicom import _backends
from fastdicom.dictionary import uid
from fastdicom.pixels import codecs as fc
from fastdicom.transcode import syntax_uid

from ..conftest import implementations
from ..corpus import corpus_files
from .frame_specs import decode_spec, options, spec_like, spec_of
from .test_codec_twins import _only

DECODERS = implementations("htj2k")
ENCODERS = implementations("htj2k_encode")
OPENJPH = dict(DECODERS).get("cython")
OPENJPEG = dict(DECODERS).get("rust")
native = pytest.mark.skipif(OPENJPH is None, reason="OpenJPH binding not built (or FASTDICOM_BACKEND=python)")
try:
    import imagecodecs
except ImportError:  # pragma: no cover - imagecodecs is a test dependency
    imagecodecs = None
third_party = pytest.mark.skipif(imagecodecs is None, reason="imagecodecs not installed")

HT_FILES = [
    f for f in corpus_files() if fc.CAPABILITY.get(f.row["transfer_syntax_uid"]) == "htj2k" and f.row["decode"] == "yes"
]
UNCOMPRESSED = [
    f
    for f in corpus_files()
    if f.row["transfer_syntax_uid"] in ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1")
    and f.row["decode"] == "yes"
    and f.row["BitsAllocated"] in ("8", "16")
    and f.row["SamplesPerPixel"] in ("1", "3")
]


def _read(cf):
    path = cf.resolve()
    if path is None:
        pytest.skip(f"{cf.path} not installed")
    return fastdicom.read(path)


def _frames(px, n=None):
    return [bytes(px.encoded_frame(k)) for k in range(min(px.number_of_frames, n or px.number_of_frames))]


def _random_frame(shape, bits, signed, seed=0):
    rng = np.random.default_rng(seed)
    lo, hi = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)
    dtype = np.dtype(("i" if signed else "u") + ("1" if bits <= 8 else "2"))
    frame = rng.integers(lo, hi, size=shape).astype(dtype)
    frame.flat[0], frame.flat[-1] = lo, hi - 1  # both ends of the range
    return frame


def _smooth_frame(shape, bits, seed=0):
    """A gradient with a little noise: what lossy coding is for."""
    rng = np.random.default_rng(seed)
    rows, cols = shape[:2]
    base = np.add.outer(np.linspace(0, 0.6, rows), np.linspace(0, 0.35, cols))
    if len(shape) == 3:
        base = np.stack([base, base[::-1], 0.9 - base], -1)
    values = base * ((1 << bits) - 1) + rng.normal(0, (1 << bits) / 400, shape)
    return np.clip(np.round(values), 0, (1 << bits) - 1).astype(np.uint8 if bits <= 8 else np.uint16)


def _as_int(a):
    a = np.asarray(a)
    return a[..., 0].astype(np.int64) if a.ndim == 3 and a.shape[-1] == 1 else a.astype(np.int64)


def _main_header(cs: bytes) -> tuple[dict[int, bytes], int]:
    """Marker -> segment body of a codestream's main header (SOC to the first SOT), and where SOT is."""
    out, pos = {}, 2
    while cs[pos : pos + 2] != b"\xff\x90":
        length = int.from_bytes(cs[pos + 2 : pos + 4], "big")
        out[cs[pos + 1]] = cs[pos + 4 : pos + 2 + length]
        pos += 2 + length
    return out, pos


# -- the corpus -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [n for n, _ in DECODERS])
@pytest.mark.parametrize("cf", HT_FILES, ids=lambda cf: cf.path)
def test_corpus_files_decode_to_the_reference(cf, name, monkeypatch):
    """Each implementation, alone in the registry, through the data set's decode path gives pydicom's pixels."""
    ds = _read(cf)
    try:
        _only(monkeypatch, "htj2k", name)
        assert fc.decoder(cf.row["transfer_syntax_uid"]).name == name
        arr = np.ascontiguousarray(ds.pixel_array)
    finally:
        monkeypatch.undo()
        _backends.refresh()
    digest = hashlib.sha256(arr.astype(arr.dtype.newbyteorder("<")).tobytes()).hexdigest()
    if digest == cf.row["decoded_sha256"]:
        return
    # Lossy frames: OpenJPH may round apart from OpenJPEG (the reference's decoder), by one at most.
    assert name == "cython" and cf.row["transfer_syntax_uid"] == uid.HTJ2K, "not the reference pixels"
    other = next((n for n, _m in DECODERS if n != "cython"), None)
    if other is None:
        pytest.skip("no OpenJPEG decoder to compare with")
    try:
        _only(monkeypatch, "htj2k", other)
        ref = fastdicom.read(cf.resolve()).pixel_array
    finally:
        monkeypatch.undo()
        _backends.refresh()
    assert np.abs(arr.astype(np.int64) - ref.astype(np.int64)).max() <= 1


@native
@pytest.mark.parametrize("cf", HT_FILES, ids=lambda cf: cf.path)
def test_openjph_equals_openjpeg_frame_by_frame(cf):
    ds = _read(cf)
    px = ds.pixels
    others = [m for n, m in DECODERS if n != "cython"]
    if not others:
        pytest.skip("no OpenJPEG decoder here")
    lossless = cf.row["transfer_syntax_uid"] != uid.HTJ2K
    for frame in _frames(px, 4):
        ours = OPENJPH.htj2k_decode(frame, spec_of(px))
        for other in others:
            theirs = _as_int(other.htj2k_decode(frame, spec_of(px)))
            diff = np.abs(ours.astype(np.int64) - theirs).max()
            assert diff == 0 if lossless else diff <= 1


@native
def test_decode_into_the_callers_array_and_threads():
    cf = next((f for f in HT_FILES if f.resolve() and f.row["NumberOfFrames"] not in ("", "1")), None)
    if cf is None:
        pytest.skip("no multi-frame HTJ2K file installed")
    ds = _read(cf)
    px = ds.pixels
    shape = px._frame_shape()
    frames = _frames(px)
    ref = ds.pixel_array
    out = np.zeros((len(frames), *shape), dtype=ref.dtype)
    with ThreadPoolExecutor(4) as pool:
        back = list(
            pool.map(lambda k: OPENJPH.htj2k_decode(frames[k], fc.DecodeFrame.of(px, out[k])), range(len(frames)))
        )
    assert all(np.shares_memory(b, out[k]) for k, b in enumerate(back))
    assert np.array_equal(out, ref)
    wide = decode_spec(shape, np.int32)  # a wider item: values as astype gives them
    assert OPENJPH.htj2k_decode(frames[0], wide) is wide.out
    assert np.array_equal(wide.out, ref[0].astype(np.int32))


@native
def test_the_header_must_match_the_frame_before_anything_is_decoded():
    frame = _random_frame((37, 53), 12, False)
    cs = OPENJPH.htj2k_encode(frame, options(12))
    with pytest.raises(ValueError, match="header says 37x53 with 1 components"):
        OPENJPH.htj2k_decode(cs, decode_spec((38, 53)))
    with pytest.raises(ValueError, match="header says"):
        OPENJPH.htj2k_decode(cs, decode_spec((37, 53, 3)))
    with pytest.raises(ValueError, match="EOC"):
        OPENJPH.htj2k_decode(cs[: len(cs) // 2], spec_like(frame))
    with pytest.raises(ValueError, match="Psot"):
        OPENJPH.htj2k_decode(cs[: len(cs) // 2] + b"\xff\xd9", spec_like(frame))
    if imagecodecs is not None:  # a Part 1 codestream: OpenJPH decodes HT code-blocks only, OpenJPEG the rest
        part1 = imagecodecs.jpeg2k_encode(frame, codecformat="J2K", reversible=True)
        if dict(implementations("htj2k")).get("rust") is None:
            with pytest.raises(ValueError, match="OpenJPH"):
                OPENJPH.htj2k_decode(part1, spec_like(frame))
        else:
            np.testing.assert_array_equal(OPENJPH.htj2k_decode(part1, spec_like(frame)), frame)


@native
def test_truncated_frame_is_refused_through_the_data_set():
    cf = next((f for f in HT_FILES if f.resolve()), None)
    if cf is None:
        pytest.skip("no HTJ2K file installed")
    px = _read(cf).pixels
    frame = _frames(px, 1)[0]
    out = np.empty(px._frame_shape(), dtype=px.dtype)
    for data in (frame[: len(frame) // 2], frame[: len(frame) // 2] + b"\xff\xd9"):
        with pytest.raises(fastdicom.errors.InvalidDicomError):
            fc.decode_frame(data, fc.DecodeFrame.of(px, out))


# -- round trips ----------------------------------------------------------------------------------


SHAPES = [(1, 1), (1, 2), (2, 1), (3, 517), (517, 3), (64, 64), (37, 53), (1, 1, 3), (5, 7, 3)]


def _check_round_trip(frame, bits, **kw):
    shape = frame.shape
    for name, enc in ENCODERS:
        cs = enc.htj2k_encode(frame, options(bits, **kw))
        assert len(cs) % 2 == 0 and cs[:4] == b"\xff\x4f\xff\x51", name
        for dname, dec in DECODERS:
            back = _as_int(dec.htj2k_decode(cs, spec_like(frame)))
            assert np.array_equal(back, frame.astype(np.int64)), (name, dname)
        if imagecodecs is not None:  # both of imagecodecs' decoders: OpenJPEG and OpenJPH 0.26
            assert np.array_equal(_as_int(imagecodecs.jpeg2k_decode(cs)).reshape(shape), frame), name
            assert np.array_equal(_as_int(imagecodecs.htj2k_decode(cs)).reshape(shape), frame), name


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("bits", range(1, 17))
def test_lossless_round_trip_every_depth(bits, signed):
    _check_round_trip(_random_frame((37, 53), bits, signed, seed=bits), bits)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_lossless_round_trip_odd_shapes(shape):
    bits = 8 if len(shape) == 3 else 12
    _check_round_trip(_random_frame(shape, bits, False, seed=sum(shape)), bits)
    _check_round_trip(_random_frame(shape, bits, True, seed=sum(shape) + 1), bits)


@pytest.mark.parametrize("shape", [(3, 517), (700, 90), (64, 64), (65, 1000, 3)], ids=str)
def test_rpcl_codestreams_follow_ps3_5(shape):
    """RPCL progression, a TLM segment with the tile-part lengths, a lowest resolution of at most 64x64."""
    bits = 8 if len(shape) == 3 else 16
    frame = _random_frame(shape, bits, False, seed=3)
    _check_round_trip(frame, bits, rpcl=True)
    for name, enc in ENCODERS:
        cs = enc.htj2k_encode(frame, options(bits, rpcl=True))
        header, sot = _main_header(cs)
        cod, tlm = header[0x52], header.get(0x55)
        assert cod[1] == 2, f"{name}: progression {cod[1]} is not RPCL"
        levels = cod[5]
        assert -(-max(shape[:2]) >> levels) <= 64, name
        assert tlm is not None, f"{name}: no TLM marker segment"
        assert tlm[1] == 0x60, name
        assert int.from_bytes(tlm[4:8], "big") == int.from_bytes(cs[sot + 6 : sot + 10], "big"), name


def test_encoders_refuse_what_they_cannot_keep():
    frame = _random_frame((8, 8), 12, False)
    for _name, enc in ENCODERS:
        with pytest.raises(ValueError, match="outside"):
            enc.htj2k_encode(frame, options(10))  # values need 12 bits
        with pytest.raises(ValueError):
            enc.htj2k_encode(frame.astype(np.float32), options(12))
        with pytest.raises(ValueError):
            enc.htj2k_encode(frame.astype(np.uint8), options(12))


def test_steps_openjph_would_abort_on_are_refused_by_every_encoder():
    """OpenJPH 0.9 aborts the process on some quantisation steps from 0.5 up (3x3 at 0.5 with no
    decomposition, at 1.0 with one): every encoder refuses steps above HTJ2K_MAX_QSTEP instead."""
    frame = _random_frame((3, 3), 8, False)
    for name, enc in ENCODERS:
        with pytest.raises(ValueError, match="refused"):
            enc.htj2k_encode(frame, options(8, qstep=0.5))
        assert enc.htj2k_encode(frame, options(8, qstep=fc.HTJ2K_MAX_QSTEP)), name
    ojph = pytest.importorskip("fastdicom._cy._openjph")
    assert ojph.MAX_QSTEP == fc.HTJ2K_MAX_QSTEP


def test_lossy_htj2k_of_tiny_frames_does_not_abort():
    """transcode to htj2k-lossy of pydicom's 3x3 RGB file searched its step up to 1.0, where OpenJPH 0.9 aborted
    the process; run in a child so that an abort fails this test, not the run."""
    pytest.importorskip("pydicom")
    code = textwrap.dedent(
        """
        import numpy as np, fastdicom
        from pydicom.data import get_testdata_file
        ds = fastdicom.read(get_testdata_file("SC_rgb_small_odd.dcm"))
        for target in ("htj2k-lossy", "htj2k"):
            out = fastdicom.read(fastdicom.to_bytes(fastdicom.transcode(ds, target)))
            assert out.pixel_array.shape == ds.pixel_array.shape
        print("ok")
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr[-2000:]


@pytest.mark.parametrize("shape,bits", [((96, 80), 8), ((96, 80), 12), ((96, 80, 3), 8)], ids=str)
def test_lossy_encode_stays_close(shape, bits):
    frame = _smooth_frame(shape, bits)
    scale = (1 << bits) - 1
    for name, enc in ENCODERS:
        sizes = []
        for qstep in (0.5 / scale, 4.0 / scale, 16.0 / scale):
            cs = enc.htj2k_encode(frame, options(bits, qstep=qstep))
            sizes.append(len(cs))
            assert _main_header(cs)[0][0x52][9] == 0, "9/7 irreversible wavelet"
            for dname, dec in DECODERS:
                back = _as_int(dec.htj2k_decode(cs, spec_like(frame)))
                err = np.abs(back - frame.astype(np.int64))
                # a step of q (of the range) moves samples by about q: allow the wavelet's gain
                assert err.max() <= max(2, 6 * qstep * scale), (name, dname, qstep, err.max())
                assert err.mean() <= max(1, qstep * scale), (name, dname, qstep, err.mean())
        assert sizes[0] > sizes[1] > sizes[2], name


# -- hostile input --------------------------------------------------------------------------------

HOSTILE = textwrap.dedent(
    """
    import random, sys
    import numpy as np
    from fastdicom.pixels import _codecs_openjph as ojph
    from fastdicom.pixels.codecs import DecodeFrame
    frame = open(sys.argv[1], "rb").read().rstrip(b"\\0")
    shape = tuple(map(int, sys.argv[2:]))
    spec = DecodeFrame(np.zeros(shape, np.uint16), shape[0], shape[1], shape[2] if len(shape) > 2 else 1, 16, 16, 0, "", "")
    rng = random.Random(4321)
    cut = [frame[:n] for n in range(0, len(frame) - 2, max(1, len(frame) // 150))]
    cases = [(c, "cut") for c in cut] + [(c + b"\\xff\\xd9", "cut") for c in cut]
    siz = frame.find(b"\\xff\\x51")
    lies = [  # (offset from the SIZ marker, new bytes): extent, offset, tile size, Csiz, Ssiz, XRsiz, YRsiz
        (6, "7fffffff"), (6, "00000001"), (10, "00100000"), (14, "00000005"), (22, "00000001"),
        (26, "00000001"), (22, "00000002"), (26, "00000004"), (38, "0100"), (38, "0000"),
        (40, "1f"), (40, "8f"), (41, "02"), (42, "00"),
    ]
    for off, value in lies:
        b = bytearray(frame)
        b[siz + off : siz + off + len(value) // 2] = bytes.fromhex(value)  # a SIZ that lies
        cases.append((bytes(b), "siz"))
    for k in range(600):
        b = bytearray(frame)
        span = len(b) if k % 2 else min(len(b), 300)  # anywhere, or the headers and first packets
        for _ in range(rng.randrange(1, 8)):
            b[rng.randrange(span)] = rng.randrange(256)
        cases.append((bytes(b), "flip"))
    counts = {"ok": 0, "ValueError": 0}
    for data, kind in cases:
        try:
            ojph.htj2k_decode(data, spec)
            if kind == "cut":
                print("a truncated codestream decoded", len(data))
                sys.exit(3)
            counts["ok"] += 1
        except ValueError:
            counts["ValueError"] += 1
    print(counts["ok"], counts["ValueError"], len(cases))
    """
)


def _hostile_frames():
    out = [("generated", OPENJPH.htj2k_encode(_smooth_frame((96, 80), 12), options(12)), (96, 80))]
    rgb = OPENJPH.htj2k_encode(_smooth_frame((40, 56, 3), 8), options(8, qstep=0.004))
    out.append(("generated-rgb", rgb, (40, 56, 3)))
    for cf in HT_FILES:
        if cf.resolve():
            px = _read(cf).pixels
            out.append((cf.path, _frames(px, 1)[0], px._frame_shape()))
    return out


@native
def test_hostile_codestreams_raise_value_error_and_never_crash(tmp_path):
    """In a child process: a native abort (OpenJPH 0.9 has its asserts compiled in) fails this test, not the run."""
    for name, frame, shape in _hostile_frames():
        path = tmp_path / "frame.bin"
        path.write_bytes(frame)
        r = subprocess.run(
            [sys.executable, "-c", HOSTILE, str(path), *map(str, shape)], capture_output=True, text=True, timeout=600
        )
        assert r.returncode == 0, f"{name}: rc {r.returncode}: {r.stdout[-500:]} {r.stderr[-2000:]}"
        assert r.stderr == "", f"{name}: OpenJPH printed {r.stderr[-500:]}"
        ok, bad, total = map(int, r.stdout.split())
        assert bad >= 300 and ok + bad == total, name


@native
def test_errors_in_parallel_threads_stay_apart():
    good = _smooth_frame((64, 48), 12)
    cs = OPENJPH.htj2k_encode(good, options(12))
    broken = bytearray(cs)
    broken[len(cs) // 2 : len(cs) // 2 + 40] = bytes(40)

    def one(k):
        try:
            return np.array_equal(OPENJPH.htj2k_decode(cs if k % 2 else bytes(broken), spec_like(good)), good)
        except ValueError:
            return None

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(400)))
    assert all(r is True for r in results[1::2])
    assert all(r is not True for r in results[0::2])


# -- transcoding ----------------------------------------------------------------------------------


def _pydicom_can_decode_htj2k() -> bool:
    try:
        from pydicom.pixels.decoders import HTJ2KLosslessDecoder
    except ImportError:
        return False
    return HTJ2KLosslessDecoder.is_available  # pydicom 3.0.2: with pylibjpeg-openjpeg


@pytest.mark.skipif(not _pydicom_can_decode_htj2k(), reason="pydicom has no HTJ2K plugin here")
@pytest.mark.parametrize("target", ["htj2k", "htj2k-rpcl"])
def test_pydicom_reads_what_we_write(target):
    import pydicom

    for cf in [f for f in UNCOMPRESSED if f.path.endswith(("/SC_rgb.dcm", "/CT_small.dcm", "/MR_small.dcm"))]:
        ds = _read(cf)
        before = _in_range(ds)
        out = fastdicom.transcode(ds, target)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = pydicom.dcmread(io.BytesIO(fastdicom.to_bytes(out))).pixel_array
        assert np.array_equal(theirs, before), cf.path


def _in_range(ds):
    px = ds.pixels
    if px.samples == 3 and px.decoded_photometric != "RGB":
        pytest.skip("HTJ2K encoding takes RGB (or one sample)")
    before = ds.pixel_array
    bs = px.bits_stored
    lo, hi = (-(1 << (bs - 1)), (1 << (bs - 1)) - 1) if before.dtype.kind == "i" else (0, (1 << bs) - 1)
    if before.size and (before.min() < lo or before.max() > hi):
        pytest.skip("values outside Bits Stored")
    return before


@pytest.mark.parametrize("target", ["htj2k", "htj2k-rpcl"])
@pytest.mark.parametrize("cf", UNCOMPRESSED[:30], ids=lambda cf: cf.path)
def test_lossless_transcode_round_trips(cf, target):
    ds = _read(cf)
    before = _in_range(ds)
    out = fastdicom.transcode(ds, target)
    assert out.transfer_syntax == syntax_uid(target)
    assert np.array_equal(out.pixel_array, before)
    if ds.pixels.samples == 3:
        assert out.PhotometricInterpretation == "YBR_RCT"
    assert out.get("LossyImageCompression") == ds.get("LossyImageCompression")
    back = fastdicom.transcode(out, "explicit")
    assert np.array_equal(back.pixel_array, before)
    assert back.PhotometricInterpretation == ds.pixels.decoded_photometric


@pytest.mark.parametrize("cf", HT_FILES, ids=lambda cf: cf.path)
def test_htj2k_corpus_files_transcode_and_back(cf):
    ds = _read(cf)
    before = ds.pixel_array
    lossless = cf.row["transfer_syntax_uid"] != uid.HTJ2K
    for target in ("htj2k", "htj2k-rpcl", "explicit"):
        out = fastdicom.transcode(fastdicom.transcode(ds, "explicit"), target)
        assert np.array_equal(out.pixel_array, before)
        assert (out.get("LossyImageCompression") == "01") == (not lossless)


def test_synthetic_series_to_every_htj2k_syntax():
    from fastdicom.synth import enhanced_ct

    ds = enhanced_ct(frames=3, rows=70, columns=45)
    before = ds.pixel_array
    for target, suffix in [("htj2k", "4.201"), ("htj2k-lossless", "4.201"), ("htj2k-rpcl", "4.202")]:
        out = fastdicom.transcode(ds, target)
        assert out.transfer_syntax.endswith(suffix)
        assert np.array_equal(out.pixel_array, before)
        assert np.array_equal(fastdicom.transcode(out, "implicit").pixel_array, before)
    lossy = fastdicom.transcode(ds, "htj2k-lossy", ratio=8)
    assert lossy.transfer_syntax == "1.2.840.10008.1.2.4.203"
    assert lossy.LossyImageCompression == "01"
    assert lossy.LossyImageCompressionMethod == "ISO_15444_15"
    achieved = float(lossy.LossyImageCompressionRatio)
    assert 6 <= achieved <= 10.5, achieved
    err = np.abs(lossy.pixel_array.astype(np.int64) - before)
    assert err.mean() < 0.01 * (int(before.max()) - int(before.min()))
    with pytest.raises(ValueError, match="at least 1"):
        fastdicom.transcode(ds, "htj2k-lossy", ratio=0.5)


@pytest.mark.parametrize("target", ["htj2k", "htj2k-rpcl", "htj2k-lossy"])
def test_rgb_transcode_sets_the_colour_transform(target):
    cf = next((f for f in corpus_files() if f.path.endswith("/SC_rgb.dcm")), None)
    if cf is None:
        pytest.skip("SC_rgb.dcm not listed")
    ds = _read(cf)
    before = ds.pixel_array
    out = fastdicom.transcode(ds, target, ratio=6)
    assert out.PhotometricInterpretation == ("YBR_ICT" if target == "htj2k-lossy" else "YBR_RCT")
    after = out.pixel_array
    if target == "htj2k-lossy":
        assert np.abs(after.astype(np.int64) - before).mean() < 3
        assert out.LossyImageCompressionMethod == "ISO_15444_15"
    else:
        assert np.array_equal(after, before)


def test_non_rgb_colour_is_refused():
    cf = next((f for f in corpus_files() if f.path.endswith("/SC_rgb.dcm")), None)
    if cf is None:
        pytest.skip("SC_rgb.dcm not listed")
    ds = _read(cf)
    ybr = fastdicom.transcode(ds, "explicit")
    ybr.PhotometricInterpretation = "YBR_FULL"
    with pytest.raises(ValueError, match="HTJ2K encoding of YBR_FULL"):
        fastdicom.transcode(ybr, "htj2k")


def test_aliases():
    assert syntax_uid("htj2k") == "1.2.840.10008.1.2.4.201"
    assert syntax_uid("HTJ2K-lossless") == "1.2.840.10008.1.2.4.201"
    assert syntax_uid("htj2k-rpcl") == "1.2.840.10008.1.2.4.202"
    assert syntax_uid("htj2k-lossy") == "1.2.840.10008.1.2.4.203"
