"""transcode: compressed corpus files to the native syntaxes and to RLE, read back by fastdicom and pydicom."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

import fastdicom
from fastdicom.pixels import NoDecoderError
from fastdicom.pixels import codecs as fc
from fastdicom.transcode import syntax_uid

from ..corpus import corpus_files
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
        fastdicom.transcode(ds, "1.2.840.10008.1.2.4.80")  # JPEG-LS encoding: not yet
    with pytest.raises(ValueError):
        fastdicom.transcode(ds, "no-such-syntax")


def test_32_bit_pixels_survive_byte_order_changes():
    """OW Pixel Data of 32-bit pixels swaps in 4-byte units (not 2) when the byte order changes."""
    for name in ("rtdose.dcm", "rtdose_expb.dcm"):
        cf = next((f for f in corpus_files() if f.path.endswith("/" + name)), None)
        if cf is None or cf.resolve() is None:
            continue
        ds = fastdicom.read(cf.resolve())
        ref = ds.pixel_array
        for target in ("big", "explicit", "implicit"):
            out = fastdicom.transcode(ds, target)
            assert np.array_equal(out.pixel_array, ref)
            assert np.array_equal(_pydicom_pixels(out), ref)
