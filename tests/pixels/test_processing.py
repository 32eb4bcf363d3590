"""Pixel transforms: the Cython kernels equal their numpy twins bit for bit, and the data set
functions give what pydicom 3's ``pydicom.pixels.processing`` gives on every corpus file."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import fastdicom
from fastdicom.pixels import processing as fp

from ..conftest import backends_to_test
from ..corpus import corpus_files
from ..dataset import pixel_order

pydicom = pytest.importorskip("pydicom")
from pydicom.pixels import processing as pp  # noqa: E402

UNCOMPRESSED = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99", "")
RLE = "1.2.840.10008.1.2.5"
FILES = [f for f in corpus_files() if f.row["transfer_syntax_uid"] in (*UNCOMPRESSED, RLE) and f.row["decode"] == "yes"]
#: The files whose Photometric Interpretation a data set function below transforms (8-bit YBR only).
PROCESSED = [
    f
    for f in FILES
    if f.row["PhotometricInterpretation"] in ("MONOCHROME1", "MONOCHROME2", "PALETTE COLOR")
    or (f.row["PhotometricInterpretation"] in ("YBR_FULL", "YBR_FULL_422") and f.row["BitsAllocated"] == "8")
]


def _kernel_backends() -> list[str]:
    return backends_to_test("processing")


@pytest.fixture(params=_kernel_backends())
def kernels(request) -> str:
    return request.param


DTYPES = ["u1", "i1", "u2", "i2", "u4", "i4", "f4", "f8"]


def _random(dtype: str, n: int = 5000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return (rng.standard_normal(n) * 3000).astype(dt)
    info = np.iinfo(dt)
    return rng.integers(max(info.min, -70000), min(info.max, 70000), n, endpoint=True).astype(dt)


# -- kernels: native and twin give the same bits ------------------------------------------------

needs_both = pytest.mark.skipif(len(_kernel_backends()) < 2, reason="native kernels not in use")


@needs_both
@pytest.mark.parametrize("dtype", DTYPES)
def test_rescale_twins(dtype):
    a = _random(dtype).reshape(50, 100)
    outs = [fp.rescale(a, 1.5, -1024.25, backend=b) for b in ("cython", "python")]
    assert outs[0].dtype == np.float64 and outs[0].shape == a.shape
    assert np.array_equal(outs[0], outs[1])
    assert np.array_equal(outs[0], a.astype(np.float64) * 1.5 + -1024.25)


@needs_both
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
def test_window_twins(dtype, function):
    a = _random(dtype)
    outs = [fp.window(a, 40, 400, function=function, y_min=-1024, y_max=3071, backend=b) for b in ("cython", "python")]
    if function == "SIGMOID":  # exp() of libm and of numpy may differ in the last place
        np.testing.assert_allclose(outs[0], outs[1], rtol=1e-13, atol=1e-9)
    else:
        assert np.array_equal(outs[0], outs[1])


@needs_both
@pytest.mark.parametrize("dtype", ["u1", "i1", "u2", "i2", "u4", "i4", "i8", "b1"])
@pytest.mark.parametrize("lut_dtype", ["u1", "u2"])
def test_lut_twins(dtype, lut_dtype):
    a = _random("i4").astype(dtype) if dtype != "b1" else _random("u1") > 100
    table = np.random.default_rng(1).integers(0, 255, (3, 4096)).astype(lut_dtype)
    for first_map in (-100, 0, 17):
        outs = [fp.lut(a, table, first_map, backend=b) for b in ("cython", "python")]
        assert outs[0].shape == a.shape + (3,) and outs[0].dtype == np.dtype(lut_dtype)
        assert np.array_equal(outs[0], outs[1])
        idx = np.clip(a.astype(np.int64) - first_map, 0, 4095)
        assert np.array_equal(outs[0][..., 1], table[1][idx])


@needs_both
@pytest.mark.parametrize("dtype", DTYPES)
def test_invert_twins(dtype):
    a = _random(dtype)
    outs = [fp.invert_monochrome1(a, low=-2048, high=2047, backend=b) for b in ("cython", "python")]
    assert outs[0].dtype == a.dtype
    assert np.array_equal(outs[0], outs[1])


@needs_both
def test_ybr_twins():
    a = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    outs = [fp.convert_color_space(a, "YBR_FULL", "RGB", backend=b) for b in ("cython", "python")]
    assert np.array_equal(outs[0], outs[1])


# -- kernels: meaning ------------------------------------------------------------------------------


def test_window_linear_values(kernels):
    # LINEAR, center 2048, width 4096 over [0, 255]: the ends clip, the middle maps through the line.
    out = fp.window(np.array([-5, 0, 2047, 4095, 9000], dtype=np.int16), 2048, 4096, backend=kernels)
    assert out[0] == 0 and out[-1] == 255
    assert out[2] == pytest.approx(((2047 - 2047.5) / 4095 + 0.5) * 255)


def test_window_rejects_bad_widths(kernels):
    with pytest.raises(ValueError):
        fp.window(np.zeros(3, np.int16), 0, 0.5, backend=kernels)
    with pytest.raises(ValueError):
        fp.window(np.zeros(3, np.int16), 0, 0, function="SIGMOID", backend=kernels)
    with pytest.raises(ValueError):
        fp.window(np.zeros(3, np.int16), 0, 10, function="CUBIC", backend=kernels)


def test_lut_clips_far_values(kernels):
    out = fp.lut(np.array([-(2**31), 0, 2**31 - 1], dtype=np.int32), np.array([7, 8, 9], np.uint16), 0, backend=kernels)
    assert out.tolist() == [7, 7, 9]


def test_invert_from_dataset(kernels):
    ds = fastdicom.Dataset()
    ds.BitsStored = 12
    ds.PixelRepresentation = 0
    a = np.array([0, 100, 4095], dtype=np.uint16)
    assert fp.invert_monochrome1(a, ds, backend=kernels).tolist() == [4095, 3995, 0]
    ds.PixelRepresentation = 1
    assert fp.invert_monochrome1(np.array([-2048, 0, 2047], np.int16), ds, backend=kernels).tolist() == [
        2047,
        -1,
        -2048,
    ]


def test_segmented_lut_expansion():
    # discrete 0, 10; linear to 50 over 4; indirect: replay 1 segment at word 0 (the discrete one)
    words = [0, 2, 0, 10, 1, 4, 50, 2, 1, 0, 0]
    assert fp._expand_segmented(words, "uint16", True).tolist() == [0, 10, 20, 30, 40, 50, 0, 10]
    with pytest.raises(ValueError):
        fp._expand_segmented([1, 2, 5], "uint16", True)
    with pytest.raises(ValueError):
        fp._expand_segmented([0, 1, 5, 2, 1, 3, 0], "uint16", True)  # an indirect segment replaying itself


# -- data set functions against pydicom, on every corpus file -------------------------------------


def _pair(cf):
    path = cf.resolve()
    if path is None:
        pytest.skip("not installed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pds = pydicom.dcmread(path)
        ref = pds.pixel_array
    ds = fastdicom.read(path)
    arr = ds.pixel_array
    if pixel_order.dataset_read_otherwise(ds):
        # pydicom reads these big-endian pixels otherwise than PS3.5 8.2 (tests/dataset/pixel_order.py):
        # its processing is compared on our pixels.
        ref = arr
    assert np.array_equal(arr, ref)
    return ds, arr, pds, ref


def _same(ours, theirs):
    assert ours.shape == theirs.shape
    if theirs.dtype.kind == "f":
        assert np.array_equal(ours.astype(np.float64), theirs.astype(np.float64))
    else:
        assert np.array_equal(ours, theirs)


@pytest.mark.parametrize("cf", PROCESSED, ids=lambda cf: cf.path)
def test_matches_pydicom_processing(cf, kernels):
    """Modality LUT and VOI LUT (monochrome), palette colour, YBR to RGB: what pydicom gives, on every file each
    applies to (pydicom computes every one of them; an error on either side fails the test)."""
    ds, arr, pds, ref = _pair(cf)
    photometric = ds.get("PhotometricInterpretation")
    assert photometric == cf.row["PhotometricInterpretation"]
    checked = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if photometric in ("MONOCHROME1", "MONOCHROME2"):
            _same(fp.apply_modality_lut(arr, ds, backend=kernels), pp.apply_modality_lut(ref, pds))
            _same(fp.apply_voi_lut(arr, ds, backend=kernels), pp.apply_voi_lut(ref, pds))
            checked += ["modality", "voi"]
        if photometric == "PALETTE COLOR":
            if not ds.is_little_endian:
                # pydicom 3.0 reads plain (not segmented) palette data as little endian whatever the
                # transfer syntax; give it the words swapped so that it computes the right answer.
                for c in ("Red", "Green", "Blue", "Alpha"):
                    kw = f"{c}PaletteColorLookupTableData"
                    if kw in pds and pds[kw].VR == "OW":
                        pds[kw].value = np.frombuffer(pds[kw].value, ">u2").astype("<u2").tobytes()
            _same(fp.apply_color_lut(arr, ds, backend=kernels), pp.apply_color_lut(ref, pds))
            checked.append("palette")
        if photometric in ("YBR_FULL", "YBR_FULL_422"):
            assert ref.dtype == np.uint8
            ds.pixel_array_options(as_rgb=False)
            stored = ds.pixel_array
            pds.pixel_array_options(as_rgb=False)
            _same(stored, pds.pixel_array)
            _same(fp.convert_color_space(stored, photometric, "RGB", backend=kernels), ref)
            checked.append("ybr")
    assert checked, f"{photometric}: nothing compared"


def test_review_edge_cases():
    # LUT Descriptor read as SS: 40000 entries arrive as -25536.
    assert fp._entries(-25536) == 40000 and fp._entries(0) == 65536 and fp._entries(4096) == 4096
    # Malformed segmented LUTs: ValueError, never IndexError/ZeroDivisionError, never unbounded output.
    for words in ([0, 1, 5, 1, 0, 9], [0, 1, 5, 1, 3], [0, 1, 5, 2, 1], [0, 2, 1, 2] + [2, 1, 0, 0] * 4):
        with pytest.raises(ValueError):
            fp._expand_segmented(words, "uint16", True, limit=8)
    # A rescaled (float) array can go through a VOI LUT, as pydicom allows.
    out = fp.lut(np.array([0.7, 1.2, 2.9]), np.array([10, 20, 30], np.uint16))
    assert out.tolist() == [10, 20, 30]
