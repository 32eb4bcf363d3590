"""fastdicom.decode: order kept, threads agree, errors named or collected."""

from __future__ import annotations

import numpy as np
import pytest

import fastdicom
from fastdicom.pixels import DecodeError
from fastdicom.synth import write_ct_series

from ..corpus import corpus_files

pydicom = pytest.importorskip("pydicom")


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    return write_ct_series(str(tmp_path_factory.mktemp("series")), 6, rows=64, columns=48)


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_series_in_order(series, threads, backend):
    vol = fastdicom.decode(series, threads=threads)
    ref = np.stack([pydicom.dcmread(p).pixel_array for p in series])
    assert vol.shape == (6, 64, 48) and vol.dtype == np.int16
    assert np.array_equal(vol, ref)


def test_out_and_frames(series):
    out = np.zeros((6, 64, 48), dtype=np.int16)
    assert fastdicom.decode(series, out=out, frames=0) is out
    assert np.array_equal(out[2], pydicom.dcmread(series[2]).pixel_array)
    with pytest.raises(ValueError):
        fastdicom.decode(series, out=np.zeros((2, 2), dtype=np.int16))


def test_a_bad_item_is_named(series, tmp_path):
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(open(series[0], "rb").read()[:3000])
    with pytest.raises(DecodeError) as info:
        fastdicom.decode([series[0], str(bad), series[1]])
    assert str(bad) in str(info.value) and info.value.source == str(bad)
    report = fastdicom.decode([series[0], str(bad), series[1]], errors="collect")
    assert report.array.shape == (2, 64, 48) and len(report.failures) == 1
    assert report.failures[0].source == str(bad)


def test_rle_multiframe_decodes_in_parallel(backend):
    cf = next((f for f in corpus_files() if f.path.endswith("emri_small_RLE.dcm")), None)
    path = cf.resolve() if cf else None
    if path is None:
        pytest.skip("emri_small_RLE.dcm not installed")
    ref = pydicom.dcmread(path).pixel_array
    ds = fastdicom.read(path, backend=backend)
    for threads in (1, 2):
        assert np.array_equal(fastdicom.decode([ds], threads=threads), ref)
