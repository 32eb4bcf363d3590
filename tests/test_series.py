"""load_series: grouping, sorting along the normal, affine, rescale, Enhanced multi-frame, refusals."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import fastdicom
from fastdicom import synth
from fastdicom.series import SeriesError

pydicom = pytest.importorskip("pydicom")

ROWS = COLS = 32


def _slice(i, uids, **changes):
    study, series, frame = uids
    px = np.full((ROWS, COLS), -1000, dtype="<i2")
    px[4:8, 4:8] = 300 + i
    ds = synth.ct_slice(i, study_uid=study, series_uid=series, frame_uid=frame, rows=ROWS, columns=COLS, pixels=px)
    for key, value in changes.items():
        setattr(ds, key, value)
    return ds


def _write_series(folder, n, *, positions=None, orientation=None, slopes=None, name=None, instance=None, uids=None):
    uids = uids or (synth.new_uid(), synth.new_uid(), synth.new_uid())
    paths = []
    for i in range(n):
        changes = {}
        if positions is not None:
            changes["ImagePositionPatient"] = [float(v) for v in positions[i]]
        if orientation is not None:
            changes["ImageOrientationPatient"] = [float(v) for v in orientation]
        if slopes is not None:
            changes["RescaleSlope"], changes["RescaleIntercept"] = slopes[i]
        if instance is not None:
            changes["InstanceNumber"] = instance[i]
        ds = _slice(i, uids, **changes)
        path = folder / (name(i) if name else f"s{i:03d}.dcm")
        fastdicom.write(path, ds)
        paths.append(str(path))
    return paths, uids


def test_sorted_by_position_not_names_or_instance_numbers(tmp_path):
    n = 12
    rng = np.random.default_rng(0)
    perm = rng.permutation(n)
    # File names and Instance Numbers both run opposite to the positions, shuffled.
    paths, uids = _write_series(
        tmp_path, n, name=lambda i: f"img{perm[i]:02d}.dcm", instance=[int(v) for v in (n - perm)]
    )
    s = fastdicom.load_series(tmp_path)
    assert s.volume.shape == (n, ROWS, COLS) and s.volume.dtype == np.int16
    assert s.volume[:, 5, 5].tolist() == [300 + i for i in range(n)]  # slice i is at z = -200 + 1.25 i
    assert s.spacing == pytest.approx((1.25, 0.742188, 0.742188))
    assert s.uniform and not s.rescaled and s.series_uid == uids[1]
    # The affine puts every voxel where its slice says it is.
    for k, (path, _frame) in enumerate(s.sources):
        ref = pydicom.dcmread(path)
        assert np.array_equal(s.volume[k], ref.pixel_array)
        ipp = np.array([float(v) for v in ref.ImagePositionPatient])
        assert np.allclose(s.affine @ [0, 0, k, 1], [*ipp, 1])
        assert np.allclose(s.affine @ [3, 2, k, 1], [*(ipp + [3 * 0.742188, 2 * 0.742188, 0]), 1])


def test_rescale_matches_pydicom_modality_lut(tmp_path):
    n = 5
    slopes = [(1, -1024), (2, -1024), (0.5, 10), (1, 0), (1.5, -7.25)]
    _write_series(tmp_path, n, slopes=slopes)
    s = fastdicom.load_series(tmp_path, rescale=True, dtype=np.float64)
    assert s.rescaled and s.volume.dtype == np.float64
    from pydicom.pixels import apply_modality_lut

    for k, (path, _) in enumerate(s.sources):
        ref = pydicom.dcmread(path)
        assert np.array_equal(s.volume[k], apply_modality_lut(ref.pixel_array, ref))
    assert fastdicom.load_series(tmp_path, rescale=True).volume.dtype == np.float32


def test_oblique_orientation_sorts_along_the_normal(tmp_path):
    # Rows along x, columns along (0, cos 30, -sin 30): the normal points up in y and z mixed.
    a = math.radians(30)
    iop = [1, 0, 0, 0, math.cos(a), -math.sin(a)]
    normal = np.cross(iop[:3], iop[3:])
    n = 8
    order = [5, 2, 7, 0, 3, 6, 1, 4]  # slice i of the files sits at stack place order[i]
    positions = [np.array([10.0, 20.0, 30.0]) + normal * 2.0 * order[i] for i in range(n)]
    _write_series(tmp_path, n, positions=positions, orientation=iop)
    s = fastdicom.load_series(tmp_path)
    assert s.volume[:, 5, 5].tolist() == [300 + order.index(k) for k in range(n)]
    assert s.spacing[0] == pytest.approx(2.0)
    assert np.allclose(s.orientation[2], normal)
    for k in range(n):
        assert np.allclose(s.affine @ [0, 0, k, 1], [*(np.array([10.0, 20.0, 30.0]) + normal * 2.0 * k), 1])


def test_gantry_tilt_keeps_the_slice_offset(tmp_path):
    n = 6
    positions = [np.array([0.0, -100.0 + 0.3 * i, -50.0 + 2.5 * i]) for i in range(n)]
    _write_series(tmp_path, n, positions=positions)
    s = fastdicom.load_series(tmp_path)
    assert s.spacing[0] == pytest.approx(2.5)
    assert np.allclose(s.affine[:3, 2], [0, 0.3, 2.5])
    assert np.allclose(s.affine @ [0, 0, 5, 1], [*positions[5], 1])


def test_several_series_and_stray_files(tmp_path):
    _, uids_a = _write_series(tmp_path, 3, name=lambda i: f"a{i}.dcm")
    _, uids_b = _write_series(tmp_path, 4, name=lambda i: f"b{i}.dcm")
    (tmp_path / "README.txt").write_text("not DICOM")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "junk.bin").write_bytes(b"\0" * 300)
    groups = fastdicom.find_series(tmp_path)
    assert {k: len(v) for k, v in groups.items()} == {uids_a[1]: 3, uids_b[1]: 4}
    with pytest.raises(SeriesError, match="2 series"):
        fastdicom.load_series(tmp_path)
    assert fastdicom.load_series(tmp_path, series_uid=uids_b[1]).volume.shape[0] == 4
    with pytest.raises(SeriesError, match="not found"):
        fastdicom.load_series(tmp_path, series_uid="1.2.3")
    with pytest.raises(fastdicom.FastDicomError):  # a named file must be DICOM
        fastdicom.load_series([tmp_path / "README.txt"])


def test_refusals(tmp_path):
    same = [np.array([0.0, 0.0, 5.0])] * 2
    (tmp_path / "dup").mkdir()
    _write_series(tmp_path / "dup", 2, positions=same)
    with pytest.raises(SeriesError, match="same position"):
        fastdicom.load_series(tmp_path / "dup")

    (tmp_path / "mixed").mkdir()
    paths, uids = _write_series(tmp_path / "mixed", 2)
    ds = _slice(7, uids, ImageOrientationPatient=[0.0, 1.0, 0.0, 0.0, 0.0, -1.0])
    fastdicom.write(tmp_path / "mixed" / "odd.dcm", ds)
    with pytest.raises(SeriesError, match="orientation"):
        fastdicom.load_series(tmp_path / "mixed")

    (tmp_path / "nopos").mkdir()
    ds = _slice(0, (synth.new_uid(),) * 3)
    del ds.ImagePositionPatient
    fastdicom.write(tmp_path / "nopos" / "x.dcm", ds)
    with pytest.raises(SeriesError, match="Image Position"):
        fastdicom.load_series(tmp_path / "nopos")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SeriesError, match="no DICOM"):
        fastdicom.load_series(tmp_path / "empty")


def test_gap_is_reported(tmp_path):
    positions = [np.array([0.0, 0.0, z]) for z in (0.0, 1.0, 2.0, 4.0, 5.0)]
    _write_series(tmp_path, 5, positions=positions)
    s = fastdicom.load_series(tmp_path)
    assert not s.uniform and s.spacing[0] == pytest.approx(1.0)


def test_enhanced_multiframe_per_frame_positions(tmp_path):
    order = [4, 0, 3, 1, 2, 9, 5, 8, 6, 7]
    ds = synth.enhanced_ct(10, rows=ROWS, columns=COLS, order=order, orientation=(0, 1, 0, 0, 0, -1))
    fastdicom.write(tmp_path / "enh.dcm", ds)
    s = fastdicom.load_series(tmp_path / "enh.dcm", rescale=True)
    assert s.volume.shape == (10, ROWS, COLS)
    assert s.volume[:, ROWS // 3, COLS // 3].tolist() == [300 + i - 1024 for i in range(10)]
    assert [f for _, f in s.sources] == [order.index(i) for i in range(10)]
    assert s.spacing == pytest.approx((1.25, 0.5, 0.5))
    normal = np.cross([0, 1, 0], [0, 0, -1])
    assert np.allclose(s.affine @ [0, 0, 9, 1], [*(np.array([-32.0, -32.0, -100.0]) + normal * 1.25 * 9), 1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = pydicom.dcmread(tmp_path / "enh.dcm").pixel_array
    assert np.array_equal(s.volume, (ref[[order.index(i) for i in range(10)]].astype(np.float32) - 1024))


def test_mixed_single_and_multiframe_files(tmp_path):
    uid = synth.new_uid()
    fastdicom.write(tmp_path / "a.dcm", synth.enhanced_ct(3, rows=ROWS, columns=COLS, series_uid=uid))
    b = synth.enhanced_ct(1, rows=ROWS, columns=COLS, series_uid=uid, pixels=np.full((1, ROWS, COLS), 7, "<i2"))
    b.PerFrameFunctionalGroupsSequence[0].PlanePositionSequence[0].ImagePositionPatient = [-32.0, -32.0, -95.0]
    fastdicom.write(tmp_path / "b.dcm", b)
    s = fastdicom.load_series(tmp_path)
    assert s.volume.shape[0] == 4 and s.sources[-1] == (str(tmp_path / "b.dcm"), 0)
    assert (s.volume[-1] == 7).all()


def test_rescale_to_an_integer_type(tmp_path):
    _write_series(tmp_path, 3, slopes=[(0.5, -1024.5), (1, 0), (2, 3)])
    s = fastdicom.load_series(tmp_path, rescale=True, dtype=np.int16)
    assert s.volume.dtype == np.int16
    assert s.volume[0, 5, 5] == int(np.rint(300 * 0.5 - 1024.5)) and s.volume[2, 5, 5] == 302 * 2 + 3
