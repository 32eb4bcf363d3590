"""transcode: compressed corpus files to the native syntaxes and to RLE, read back by fastdicom and pydicom."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

import fastdicom
from fastdicom import _backends
from fastdicom.dictionary import uid
from fastdicom.pixels import NoDecoderError
from fastdicom.pixels import codecs as fc
from fastdicom.transcode import syntax_uid

from ..corpus import corpus_files
from ..dataset import pixel_order
from .frame_specs import options, spec_like
from .test_codecs import DECODABLE, _resolve

pydicom = pytest.importorskip("pydicom")
UNCOMPRESSED_FILES = [
    f
    for f in corpus_files()
    if f.row["transfer_syntax_uid"] in ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1")
    and f.row["decode"] == "yes"
    and f.row["BitsAllocated"] in ("8", "16")
]


def _pydicom_pixels(ds):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(io.BytesIO(fastdicom.to_bytes(ds))).pixel_array


@pytest.mark.parametrize("target", ["explicit", "rle"])
@pytest.mark.parametrize("cf", DECODABLE, ids=lambda cf: cf.path)
def test_compressed_to_native_and_rle(cf, target):
    ds = fastdicom.read(_resolve(cf))
    if ds.pixels.bits_allocated not in (8, 16):
        pytest.skip("RLE of this depth not exercised here")
    before = ds.pixel_array
    out = fastdicom.transcode(ds, target)
    assert out.transfer_syntax == syntax_uid(target)
    assert np.array_equal(out.pixel_array, before)
    assert np.array_equal(_pydicom_pixels(out), before)
    src = cf.row["transfer_syntax_uid"]
    if src in fc.LOSSY:
        assert out.LossyImageCompression == "01"
    if ds.pixels.samples == 3:
        assert out.PhotometricInterpretation == ds.pixels.decoded_photometric
        assert out.PlanarConfiguration == 0


@pytest.mark.parametrize("cf", UNCOMPRESSED_FILES[:40], ids=lambda cf: cf.path)
def test_native_to_rle_and_back(cf):
    path = cf.resolve()
    if path is None:
        pytest.skip("not installed")
    ds = fastdicom.read(path)
    before = ds.pixel_array
    rle = fastdicom.transcode(ds, "1.2.840.10008.1.2.5")
    assert np.array_equal(rle.pixel_array, before)
    assert np.array_equal(_pydicom_pixels(rle), before)
    back = fastdicom.transcode(rle, "ImplicitVRLittleEndian")
    assert np.array_equal(back.pixel_array, before)


def test_refusals():
    cf = next(f for f in DECODABLE if f.resolve())
    ds = fastdicom.read(cf.resolve())
    with pytest.raises(NoDecoderError):
        fastdicom.transcode(ds, "1.2.840.10008.1.2.4.51")  # JPEG Extended encoding: not offered
    with pytest.raises(ValueError):
        fastdicom.transcode(ds, "no-such-syntax")


def test_32_bit_pixels_survive_byte_order_changes():
    """OW Pixel Data of 32-bit pixels swaps in 16-bit words when the byte order changes (PS3.5 8.2).

    pydicom reads big-endian 32-bit OW in 4-byte units: it agrees on the
    little-endian results only (tests/dataset/pixel_order.py says why we follow the standard).
    """
    seen = 0
    for name in ("rtdose.dcm", "rtdose_expb.dcm", "rtdose_rle.dcm"):
        cf = next((f for f in corpus_files() if f.path.endswith("/" + name)), None)
        if cf is None or cf.resolve() is None:
            continue
        seen += 1
        ds = fastdicom.read(cf.resolve())
        ref = ds.pixel_array
        for target in ("big", "explicit", "implicit"):
            out = fastdicom.transcode(ds, target)
            assert np.array_equal(out.pixel_array, ref)
            raw = out[0x7FE00010].raw
            words = np.frombuffer(pixel_order.little_cells(raw, "OW", out.is_little_endian), "<u4")
            assert np.array_equal(words.reshape(ref.shape), ref)  # the standard's reading, written out
            if target == "big":
                theirs = np.frombuffer(pixel_order.pydicom_cells(raw, "OW", 32, False), "<u4")
                assert np.array_equal(_pydicom_pixels(out), theirs.reshape(ref.shape))
                assert not np.array_equal(_pydicom_pixels(out), ref)
            else:
                assert np.array_equal(_pydicom_pixels(out), ref)
    if not seen:
        pytest.skip("pydicom's rtdose files not installed")


def _j2k_ready(cf):
    path = cf.resolve()
    if path is None:
        pytest.skip("not installed")
    ds = fastdicom.read(path)
    px = ds.pixels
    if px.samples == 3 and px.decoded_photometric != "RGB":
        pytest.skip("JPEG 2000 encoding takes RGB (or one sample)")
    before = ds.pixel_array
    bs = px.bits_stored
    lo, hi = (-(1 << (bs - 1)), (1 << (bs - 1)) - 1) if before.dtype.kind == "i" else (0, (1 << bs) - 1)
    if before.size and (before.min() < lo or before.max() > hi):
        pytest.skip("values outside Bits Stored (refused, tested below)")
    return ds, before


@pytest.mark.parametrize("cf", UNCOMPRESSED_FILES[:40], ids=lambda cf: cf.path)
def test_native_to_jpeg2000_lossless_is_exact_here_and_in_pydicom(cf):
    ds, before = _j2k_ready(cf)
    out = fastdicom.transcode(ds, "j2k")
    assert out.transfer_syntax == "1.2.840.10008.1.2.4.90"
    assert np.array_equal(out.pixel_array, before)
    if ds.pixels.samples == 3:
        assert out.PhotometricInterpretation == "YBR_RCT"
    assert out.get("LossyImageCompression") == ds.get("LossyImageCompression")
    try:
        theirs = _pydicom_pixels(out)
    except Exception as exc:  # noqa: BLE001 - pydicom has no plugin for this depth here
        pytest.skip(f"pydicom cannot decode it here: {exc}")
    assert np.array_equal(theirs, before)


def test_jpeg2000_lossy_sets_the_lossy_attributes_and_stays_close():
    cf = next(f for f in UNCOMPRESSED_FILES if f.resolve() and f.row["BitsAllocated"] == "16")
    ds, before = _j2k_ready(cf)
    if _backends.resolve("jpeg2000_encode")[0] == "python":
        with pytest.raises(NotImplementedError):  # imagecodecs' quality is no ratio: native only
            fastdicom.transcode(ds, "j2k-lossy", ratio=8)
        return
    out = fastdicom.transcode(ds, "j2k-lossy", ratio=8)
    assert out.transfer_syntax == "1.2.840.10008.1.2.4.91"
    assert out.LossyImageCompression == "01"
    methods = out.LossyImageCompressionMethod
    assert (methods if isinstance(methods, str) else methods[-1]) == "ISO_15444_1"
    ratios = out.LossyImageCompressionRatio
    assert float(ratios if not isinstance(ratios, (list, tuple)) else ratios[-1]) > 1
    err = np.abs(out.pixel_array.astype(np.int64) - before.astype(np.int64))
    span = int(before.max()) - int(before.min()) or 1
    assert err.mean() < 0.02 * span


def test_jpeg2000_refuses_values_outside_bits_stored():
    encode = fc.encoder("jpeg2000_encode")
    with pytest.raises(ValueError, match="Bits Stored"):
        encode(np.full((4, 4), 200, dtype=np.uint16), options(4))
    with pytest.raises(ValueError, match="Bits Stored"):
        encode(np.full((4, 4), -9, dtype=np.int16), options(4))


@pytest.mark.parametrize("dtype,bits", [("u1", 8), ("i1", 8), ("u2", 12), ("i2", 12), ("u2", 16), ("i2", 16)])
@pytest.mark.parametrize("samples", [1, 3])
def test_jpeg2000_encoders_round_trip_random_frames(dtype, bits, samples):
    from ..conftest import implementations

    rng = np.random.default_rng(bits * 10 + samples)
    dt = np.dtype(dtype)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1))) if dt.kind == "i" else (0, 1 << bits)
    shape = (37, 53, 3) if samples == 3 else (37, 53)
    frame = rng.integers(lo, hi, size=shape).astype(dt)
    decode = dict(implementations("jpeg2000"))
    for _name, mod in implementations("jpeg2000_encode"):
        try:
            cs = mod.jpeg2000_encode(frame, options(bits))
        except Exception as exc:  # noqa: BLE001 - imagecodecs refuses some depths
            if _name == "python":
                continue
            raise AssertionError(f"{_name}: {exc}") from exc
        assert len(cs) % 2 == 0 and cs[:4] == b"\xff\x4f\xff\x51"
        for dname, dmod in decode.items():
            back = np.asarray(dmod.jpeg2000_decode(cs, spec_like(frame)))
            assert np.array_equal(back.astype(np.int64), frame.astype(np.int64)), (_name, dname)


@pytest.mark.parametrize("cf", UNCOMPRESSED_FILES[:40], ids=lambda cf: cf.path)
def test_native_to_jpegls_lossless_is_exact_here_and_in_pydicom(cf):
    path = cf.resolve()
    if path is None:
        pytest.skip("not installed")
    ds = fastdicom.read(path)
    before = ds.pixel_array
    bs = ds.pixels.bits_stored
    lo, hi = (-(1 << (bs - 1)), (1 << (bs - 1)) - 1) if before.dtype.kind == "i" else (0, (1 << bs) - 1)
    if before.size and (before.min() < lo or before.max() > hi):
        pytest.skip("values outside Bits Stored")
    out = fastdicom.transcode(ds, "jls")
    assert out.transfer_syntax == "1.2.840.10008.1.2.4.80"
    assert out.PhotometricInterpretation == ds.pixels.decoded_photometric
    assert np.array_equal(out.pixel_array, before)
    try:
        theirs = _pydicom_pixels(out)
    except Exception as exc:  # noqa: BLE001 - no pydicom JPEG-LS plugin installed here
        pytest.skip(f"pydicom cannot decode it here: {exc}")
    assert np.array_equal(theirs, before)


def test_jpegls_near_lossless_bounds_the_error_and_sets_the_lossy_attributes():
    cf = next(
        f
        for f in UNCOMPRESSED_FILES
        if f.resolve() and f.row["BitsAllocated"] == "16" and fastdicom.read(f.resolve()).PixelRepresentation == 0
    )
    ds = fastdicom.read(cf.resolve())
    before = ds.pixel_array
    out = fastdicom.transcode(ds, "jls-near", near=3)
    assert out.transfer_syntax == "1.2.840.10008.1.2.4.81"
    assert out.LossyImageCompression == "01"
    methods = out.LossyImageCompressionMethod
    assert (methods if isinstance(methods, str) else methods[-1]) == "ISO_14495_1"
    assert np.abs(out.pixel_array.astype(np.int64) - before.astype(np.int64)).max() <= 3


@pytest.mark.parametrize("dtype,bits", [("u1", 8), ("u1", 6), ("u2", 12), ("i2", 12), ("u2", 16), ("i2", 16)])
@pytest.mark.parametrize("samples", [1, 3])
def test_jpegls_encoders_round_trip_random_frames(dtype, bits, samples):
    from ..conftest import implementations

    rng = np.random.default_rng(bits * 7 + samples)
    dt = np.dtype(dtype)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1))) if dt.kind == "i" else (0, 1 << bits)
    shape = (29, 61, 3) if samples == 3 else (29, 61)
    frame = rng.integers(lo, hi, size=shape).astype(dt)
    for name, mod in implementations("jpegls_encode"):
        cs = mod.jpegls_encode(frame, options(bits))
        assert len(cs) % 2 == 0 and cs[:2] == b"\xff\xd8", name
        for dname, dmod in implementations("jpegls"):
            back = np.asarray(dmod.jpegls_decode(cs, spec_like(frame)))
            if dt.kind == "i":  # what a reader sees after sign extension from Bits Stored
                shift = 8 * dt.itemsize - bits
                back = ((back.astype(dt) << shift) >> shift) if shift else back.view(dt)
            assert np.array_equal(back.astype(np.int64), frame.astype(np.int64)), (name, dname)


@pytest.mark.parametrize("capability", ["htj2k_encode", "jpeg2000_encode", "jpeg_encode", "jpegls_encode"])
@pytest.mark.parametrize(
    "dtype,bits,bad", [("u2", 12, 4096), ("i2", 12, 2048), ("i2", 12, -2049), ("u1", 6, 64), ("i1", 6, -33)]
)
def test_every_encoder_refuses_values_outside_bits_stored(capability, dtype, bits, bad):
    """Called directly (not through transcode), no encoder may clip, wrap or overflow such values."""
    from ..conftest import implementations

    frame = np.zeros((40, 40), dtype=dtype)  # pylibjpeg-openjpeg needs 32 rows and columns
    frame[3, 5] = bad
    edge = np.zeros((40, 40), dtype=dtype)
    edge[3, 5] = np.clip(bad, -(1 << (bits - 1)) if dtype[0] == "i" else 0, (1 << bits) - 1 >> (dtype[0] == "i"))
    found = implementations(capability)
    if not found:
        pytest.skip(f"no {capability} implementation here")
    attr = _backends.REGISTRY[capability][0][2]
    for name, mod in found:
        with pytest.raises(ValueError, match="Bits Stored"):
            getattr(mod, attr)(frame, options(bits))
        assert getattr(mod, attr)(edge, options(bits)), (name, "the largest value that fits is accepted")


def test_jpegls_refuses_what_it_cannot_keep():
    from fastdicom.pixels.codecs import check_range

    with pytest.raises(ValueError, match="Bits Stored"):
        check_range(np.full((1, 2, 2), 4096, dtype=np.uint16), 12, "JPEG-LS")
    cf = next(
        (
            f
            for f in UNCOMPRESSED_FILES
            if f.resolve() and f.row["BitsAllocated"] == "16" and fastdicom.read(f.resolve()).PixelRepresentation == 1
        ),
        None,
    )
    if cf is None:
        pytest.skip("no signed 16-bit file installed")
    with pytest.raises(ValueError, match="signed"):
        fastdicom.transcode(fastdicom.read(cf.resolve()), "jls-near")


def test_lossy_history_stays_paired():
    """A lossy source to a lossy target: its method first, then ours; ratios pair with methods or are left alone."""
    grey = (
        fastdicom.read(f.resolve())
        for f in DECODABLE
        if f.row["transfer_syntax_uid"] in (uid.JPEGBaseline8Bit, uid.JPEGExtended12Bit) and f.resolve()
    )
    ds = next((d for d in grey if d.pixels.samples == 1), None)
    if ds is None:
        pytest.skip("no grey lossy JPEG file installed")
    out = fastdicom.transcode(ds, "jls-near", near=2)

    def values(keyword):
        v = out.get(keyword)
        return [] if v is None else list(v) if isinstance(v, (list, tuple)) else [v]

    methods, ratios = values("LossyImageCompressionMethod"), values("LossyImageCompressionRatio")
    assert methods[-1] == "ISO_14495_1" and methods[0] == "ISO_10918_1"
    assert len(ratios) in (len(methods), len(methods) - 1)
    assert out.LossyImageCompression == "01"


@pytest.mark.parametrize("cf", UNCOMPRESSED_FILES[:40], ids=lambda cf: cf.path)
def test_native_to_jpeg_lossless_is_exact_here_and_in_pydicom(cf):
    ds, before = _j2k_ready(cf)  # the same preconditions: RGB or one sample, values within Bits Stored
    out = fastdicom.transcode(ds, "jpeg-lossless")
    assert out.transfer_syntax == "1.2.840.10008.1.2.4.70"
    assert out.PhotometricInterpretation == ds.pixels.decoded_photometric
    assert out.get("LossyImageCompression") == ds.get("LossyImageCompression")
    assert np.array_equal(out.pixel_array, before)
    try:
        theirs = _pydicom_pixels(out)
    except Exception as exc:  # noqa: BLE001 - no pydicom JPEG Lossless plugin installed here
        pytest.skip(f"pydicom cannot decode it here: {exc}")
    assert np.array_equal(theirs, before)


def _eight_bit(samples: int):
    for f in UNCOMPRESSED_FILES:
        if f.resolve() and f.row["BitsAllocated"] == "8":
            ds = fastdicom.read(f.resolve())
            px = ds.pixels
            if px.samples == samples and px.bits_stored == 8 and px.decoded_photometric in ("RGB", "MONOCHROME2"):
                return ds
    pytest.skip(f"no 8-bit file with {samples} samples installed")


@pytest.mark.parametrize("samples", [1, 3])
def test_jpeg_baseline_sets_the_lossy_attributes_and_stays_close(samples):
    ds = _eight_bit(samples)
    before = ds.pixel_array
    out = fastdicom.transcode(ds, "jpeg", quality=95)
    assert out.transfer_syntax == "1.2.840.10008.1.2.4.50"
    assert out.LossyImageCompression == "01"
    methods = out.LossyImageCompressionMethod
    assert (methods if isinstance(methods, str) else methods[-1]) == "ISO_10918_1"
    assert out.PhotometricInterpretation == ("YBR_FULL_422" if samples == 3 else ds.pixels.decoded_photometric)
    ours = out.pixel_array.astype(np.int64)
    err = np.abs(ours - before.astype(np.int64))
    assert err.mean() < 3 and np.percentile(err, 99) <= 16
    try:
        theirs = _pydicom_pixels(out).astype(np.int64)
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"pydicom cannot decode it here: {exc}")
    # libjpeg-turbo here, another libjpeg in pydicom's plugin: a few levels apart at most
    assert np.abs(theirs - ours).max() <= 8


def test_jpeg_refuses_what_it_cannot_keep():
    grey16 = next(
        (fastdicom.read(f.resolve()) for f in UNCOMPRESSED_FILES if f.resolve() and f.row["BitsAllocated"] == "16"),
        None,
    )
    if grey16 is None:
        pytest.skip("no 16-bit file installed")
    with pytest.raises(ValueError, match="8-bit"):
        fastdicom.transcode(grey16, "jpeg")
    with pytest.raises(ValueError, match="quality"):
        fastdicom.transcode(_eight_bit(1), "jpeg", quality=0)


@pytest.mark.parametrize(
    "dtype,bits",
    [("u1", 8), ("u1", 2), ("u1", 5), ("u2", 12), ("i2", 12), ("u2", 16), ("i2", 16), ("u2", 9), ("i2", 15)],
)
@pytest.mark.parametrize("samples", [1, 3])
def test_jpeg_lossless_encoders_round_trip_random_frames(dtype, bits, samples):
    """Every encoder's stream decodes exactly through every decoder (signed: after sign extension)."""
    from ..conftest import implementations

    rng = np.random.default_rng(bits * 11 + samples)
    dt = np.dtype(dtype)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1))) if dt.kind == "i" else (0, 1 << bits)
    shape = (31, 67, 3) if samples == 3 else (31, 67)
    frame = rng.integers(lo, hi, size=shape).astype(dt)
    for name, mod in implementations("jpeg_encode"):
        cs = mod.jpeg_encode(frame, options(bits))
        assert len(cs) % 2 == 0 and cs[:2] == b"\xff\xd8", name
        for dname, dmod in implementations("jpeg"):
            spec = spec_like(frame, photometric="RGB" if samples == 3 else "MONOCHROME2")
            back = np.asarray(dmod.jpeg_decode(cs, spec))
            if dt.kind == "i":
                shift = 8 * dt.itemsize - bits
                back = back.astype(f"u{dt.itemsize}").view(dt)
                back = ((back << shift) >> shift) if shift else back
            assert np.array_equal(back.astype(np.int64), frame.astype(np.int64)), (name, dname)


def test_every_target_of_the_table():
    """Each target answers to its aliases, its UID and its PS3.6 keyword (which wins over a same-named alias:
    "JPEG2000" is the lossy syntax, the alias "jpeg2000" the lossless one); the encapsulated ones have an
    encoder capability, and a lossy method exactly when their syntax is lossy."""
    from fastdicom.transcode import ALIASES, ENCODABLE, TARGETS

    assert len({t.uid for t in TARGETS}) == len(TARGETS) and len(ALIASES) == sum(len(t.aliases) for t in TARGETS)
    for t in TARGETS:
        assert all(syntax_uid(alias) == t.uid for alias in t.aliases), t.uid.keyword
        assert syntax_uid(t.uid) == t.uid
        assert syntax_uid(t.uid.keyword) == t.uid, t.uid.keyword
        assert (t.capability is not None) == t.uid.is_encapsulated == (t.uid in ENCODABLE), t.uid.keyword
        assert (t.method is not None) == (t.uid in fc.LOSSY), t.uid.keyword
        if t.capability is not None:
            assert t.capability in _backends.REGISTRY and t.capability.endswith("_encode")
    assert {t.method for t in TARGETS if t.method} == {"ISO_10918_1", "ISO_14495_1", "ISO_15444_1", "ISO_15444_15"}
    assert syntax_uid("JPEG2000") == uid.JPEG2000 and syntax_uid("jpeg2000") == uid.JPEG2000Lossless
    assert syntax_uid("HTJ2K") == uid.HTJ2K and syntax_uid("htj2k") == uid.HTJ2KLossless


def test_threads_one_or_many_give_the_same_bytes():
    """``threads`` only spreads the frames: the codestreams are the same."""
    cf = next((f for f in UNCOMPRESSED_FILES if f.resolve() and f.row["BitsAllocated"] == "16"), None)
    if cf is None:
        pytest.skip("no 16-bit file installed")
    ds = fastdicom.read(cf.resolve())
    one = fastdicom.transcode(ds, "jpeg-lossless", threads=1)
    many = fastdicom.transcode(ds, "jpeg-lossless", threads=4)
    assert fastdicom.to_bytes(one) == fastdicom.to_bytes(many)


def test_lossy_targets_refuse_palette_color():
    cf = next(
        (
            f
            for f in DECODABLE + UNCOMPRESSED_FILES
            if f.resolve() and f.row["PhotometricInterpretation"] == "PALETTE COLOR"
        ),
        None,
    )
    if cf is None:
        pytest.skip("no PALETTE COLOR file installed")
    with pytest.raises(ValueError, match="PALETTE COLOR"):
        fastdicom.transcode(fastdicom.read(cf.resolve()), "jpeg")


def _grey_40x40(sop_class: str, bits_allocated: int, **us):
    """A 40x40 MONOCHROME2 data set without pixel data; ``us``: more US attributes."""
    from fastdicom.dataset.dataset import Dataset

    ds = Dataset()
    ds.add_new("SOPClassUID", "UI", sop_class)
    ds.add_new("SOPInstanceUID", "UI", "1.2.3.4.5")
    ds.add_new("PhotometricInterpretation", "CS", "MONOCHROME2")
    for kw, v in {"SamplesPerPixel": 1, "Rows": 40, "Columns": 40, "BitsAllocated": bits_allocated, **us}.items():
        ds.add_new(kw, "US", v)
    return ds


@pytest.mark.parametrize("target", ["jpeg-lossless", "jls", "j2k", "htj2k"])
def test_transcode_refuses_values_outside_bits_stored_even_below_the_codec_precision(target):
    """Bits Stored 1 with values up to 3: JPEG Lossless codes at least 2 bits, yet the data set says 1."""
    ds = _grey_40x40("1.2.840.10008.5.1.4.1.1.7", 8, BitsStored=1, HighBit=0, PixelRepresentation=0)
    ds.add_new("PixelData", "OB", (np.arange(1600) % 4).astype(np.uint8).tobytes())
    try:
        with pytest.raises(ValueError, match="Bits Stored"):
            fastdicom.transcode(ds, target)
    except NoDecoderError:
        pytest.skip(f"no {target} encoder here")


def test_near_lossless_jpegls_stays_within_bits_stored():
    """A near-lossless error may not carry a 12-bit sample past 4095: encoders code at Bits Stored or refuse."""
    from ..conftest import implementations

    frame = np.full((32, 32), 4095, dtype=np.uint16)
    frame[::2, ::3] = 4090
    decoders = implementations("jpegls")
    for name, mod in implementations("jpegls_encode"):
        try:
            cs = mod.jpegls_encode(frame, options(12, near=3))
        except ValueError as exc:
            assert name == "python" and "precision" in str(exc), (name, exc)  # imagecodecs codes 16 bits
            continue
        for dname, dmod in decoders:
            back = np.asarray(dmod.jpegls_decode(cs, spec_like(frame))).astype(np.int64)
            assert back.max() <= 4095 and np.abs(back - frame).max() <= 3, (name, dname)


def test_float_pixel_data_is_refused_by_encapsulated_targets():
    ds = _grey_40x40("1.2.840.10008.5.1.4.1.1.30", 32)
    ds.add_new("FloatPixelData", "OF", np.linspace(0, 1, 1600, dtype="<f4").tobytes())
    for target in ("rle", "j2k", "jls"):
        with pytest.raises(ValueError, match="Float Pixel Data"):
            fastdicom.transcode(ds, target)
    back = fastdicom.transcode(ds, "1.2.840.10008.1.2")  # a native syntax still converts
    assert np.array_equal(back.pixels.array(), ds.pixels.array())


def test_signed_bytes_code_as_the_bits_stored_twos_complement():
    from fastdicom.pixels.codecs import check_range, unsigned_codes

    codes = unsigned_codes(np.array([[-1, 5]], dtype=np.int8), 12, "JPEG")
    assert codes.dtype == np.uint16 and codes.tolist() == [[4095, 5]]
    with pytest.raises(ValueError, match="at least 1"):
        check_range(np.zeros((2, 2), np.int16), 0, "JPEG")
