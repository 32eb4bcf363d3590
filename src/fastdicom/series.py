"""``load_series``: a folder of slices (or Enhanced multi-frame files) to one volume.

Slices are grouped by Series Instance UID and sorted along the slice normal
(the cross product of the two Image Orientation (Patient) direction cosines)
by the distance of Image Position (Patient) along it: never by Instance
Number or file name, which lie often enough. Enhanced multi-frame objects
give the same per frame from the Plane Position and Plane Orientation
functional groups (per-frame first, then shared).

The affine maps voxel indices ``(column, row, slice, 1)`` to patient
coordinates (LPS, mm), as PS3.3 C.7.6.2.1.1 defines them:
``P = origin + column * dc * row_dir + row * dr * col_dir + slice * step``,
with ``step`` the mean offset between neighbouring slices (which keeps gantry
tilt). ``spacing`` is ``(slice, row, column)`` in mm, in the volume's axis
order.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .dataset.dataset import Dataset
from .dataset.read import read
from .errors import FastDicomError
from .pixels import processing
from .pixels.batch import decode

__all__ = ["Series", "SeriesError", "find_series", "load_series"]

#: Orientation cosines that differ by more than this are different orientations.
ORIENTATION_TOLERANCE = 1e-4
#: Slices closer than this (mm) along the normal are at the same position.
POSITION_TOLERANCE = 1e-3


class SeriesError(FastDicomError, ValueError):
    """The files do not make one volume: several series, mixed orientations, missing or duplicate positions."""


@dataclass
class Series:
    """A volume and where it lies in the patient."""

    #: (slices, rows, columns[, samples]): stored values, or real-world values with ``rescale=True``.
    volume: np.ndarray
    #: 4x4: ``affine @ (column, row, slice, 1)`` is the voxel's position (LPS, mm).
    affine: np.ndarray
    #: (slice, row, column) spacing in mm; the slice spacing is the median along the normal.
    spacing: tuple[float, float, float]
    #: Image Position (Patient) of each slice, in volume order, shape (slices, 3).
    positions: np.ndarray
    #: Row direction, column direction and slice normal, shape (3, 3).
    orientation: np.ndarray
    series_uid: str
    #: (path, frame index) of each slice, in volume order.
    sources: list[tuple[str, int]]
    #: Whether every gap between neighbouring slices equals the slice spacing (within 1%).
    uniform: bool
    rescaled: bool
    #: The header of the first slice (read without pixels).
    header: Dataset = field(repr=False)


@dataclass
class _Frame:
    path: str
    frame: int
    position: np.ndarray
    orientation: np.ndarray
    spacing: tuple[float, float]
    slope: float | None
    intercept: float | None
    header: Dataset


def _paths(src: Any) -> tuple[list[str], bool]:
    """The files to look at, and whether they came from walking folders (then non-DICOM files are skipped)."""
    if isinstance(src, (str, os.PathLike)):
        src = [src]
    out: list[str] = []
    walked = False
    for p in src:
        p = os.fspath(p)
        if os.path.isdir(p):
            walked = True
            for root, dirs, files in os.walk(p):
                dirs.sort()
                out.extend(os.path.join(root, f) for f in sorted(files))
        else:
            out.append(p)
    return out, walked


def _headers(src: Any) -> list[tuple[str, Dataset]]:
    paths, walked = _paths(src)
    out = []
    for p in paths:
        try:
            ds = read(p, stop_before_pixels=True)
        except (FastDicomError, OSError):
            if walked:
                continue
            raise
        if ds.get("SeriesInstanceUID") and ds.get("Rows"):
            out.append((p, ds))
        elif not walked:
            raise SeriesError(f"{p}: not an image (no Series Instance UID or Rows)")
    return out


def find_series(src: Any) -> dict[str, list[str]]:
    """``{Series Instance UID: [paths]}`` of the images under ``src`` (paths, folders), headers only."""
    groups: dict[str, list[str]] = {}
    for path, ds in _headers(src):
        groups.setdefault(ds.get("SeriesInstanceUID"), []).append(path)
    return groups


def _first_item(ds: Dataset | None, keyword: str) -> Dataset | None:
    seq = ds.get(keyword) if ds is not None else None
    return seq[0] if seq else None


def _macro(per_frame: Dataset | None, shared: Dataset | None, seq: str, keyword: str) -> Any:
    for group in (per_frame, shared):
        item = _first_item(group, seq)
        if item is not None and item.get(keyword) is not None:
            return item.get(keyword)
    return None


def _floats(value: Any, n: int, what: str, path: str) -> np.ndarray:
    v = value if isinstance(value, list) else [value]
    try:
        a = np.array([float(x) for x in v], dtype=np.float64)
    except (TypeError, ValueError):
        a = np.empty(0)
    if a.shape != (n,) or not np.all(np.isfinite(a)):
        raise SeriesError(f"{path}: {what} is {value!r}, not {n} numbers")
    return a


def _scalar(value: Any) -> float | None:
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return None if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return None


def _frames_of(path: str, ds: Dataset) -> list[_Frame]:
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame:
        shared = _first_item(ds, "SharedFunctionalGroupsSequence")
        out = []
        for i, pf in enumerate(per_frame):
            pos = _macro(pf, shared, "PlanePositionSequence", "ImagePositionPatient")
            iop = _macro(pf, shared, "PlaneOrientationSequence", "ImageOrientationPatient")
            spacing = _macro(pf, shared, "PixelMeasuresSequence", "PixelSpacing")
            slope = _macro(pf, shared, "PixelValueTransformationSequence", "RescaleSlope")
            intercept = _macro(pf, shared, "PixelValueTransformationSequence", "RescaleIntercept")
            if slope is None:
                slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
            where = f"{path} frame {i + 1}"
            out.append(
                _Frame(
                    path,
                    i,
                    _floats(pos, 3, "Image Position (Patient)", where),
                    _floats(iop, 6, "Image Orientation (Patient)", where),
                    tuple(_floats(spacing, 2, "Pixel Spacing", where)),  # type: ignore[arg-type]
                    _scalar(slope),
                    _scalar(intercept),
                    ds,
                )
            )
        return out
    frames = int(_scalar(ds.get("NumberOfFrames")) or 1)
    if frames != 1:
        raise SeriesError(f"{path}: {frames} frames without per-frame functional groups give no positions")
    return [
        _Frame(
            path,
            0,
            _floats(ds.get("ImagePositionPatient"), 3, "Image Position (Patient)", path),
            _floats(ds.get("ImageOrientationPatient"), 6, "Image Orientation (Patient)", path),
            tuple(_floats(ds.get("PixelSpacing"), 2, "Pixel Spacing", path)),  # type: ignore[arg-type]
            _scalar(ds.get("RescaleSlope")),
            _scalar(ds.get("RescaleIntercept")),
            ds,
        )
    ]


def load_series(
    src: str | os.PathLike | Iterable[str | os.PathLike],
    *,
    series_uid: str | None = None,
    rescale: bool = False,
    dtype: Any = np.float32,
    threads: int | None = None,
) -> Series:
    """Load one series as a volume sorted along the slice normal.

    Parameters
    ----------
    src : path, folder, or iterable of them
        Files and folders (walked recursively; files that are not DICOM
        images are skipped there, but not when named directly).
    series_uid : str, optional
        Which series, when ``src`` holds several (required then).
    rescale : bool
        Return real-world values (Hounsfield units for CT) through each
        slice's Rescale Slope/Intercept or Modality LUT, as ``dtype``.
    dtype : numpy dtype
        Type of the rescaled volume (float32 by default).
    threads : int, optional
        Decoding threads (default: the cores).

    Raises
    ------
    SeriesError
        Several series and no ``series_uid``; mixed orientations or sizes;
        a missing position; two slices at the same position.

    Examples
    --------
    >>> s = fastdicom.load_series("CT/", rescale=True)  # doctest: +SKIP
    >>> s.volume.shape, s.spacing  # doctest: +SKIP
    """
    headers = _headers(src)
    groups: dict[str, list[tuple[str, Dataset]]] = {}
    for path, ds in headers:
        groups.setdefault(ds.get("SeriesInstanceUID"), []).append((path, ds))
    if not groups:
        raise SeriesError("no DICOM images found")
    if series_uid is None:
        if len(groups) > 1:
            listing = ", ".join(f"{uid} ({len(v)} files)" for uid, v in groups.items())
            raise SeriesError(f"{len(groups)} series found; choose one with series_uid: {listing}")
        series_uid = next(iter(groups))
    elif series_uid not in groups:
        raise SeriesError(f"series {series_uid} not found")

    frames = [f for path, ds in groups[series_uid] for f in _frames_of(path, ds)]
    iop = frames[0].orientation
    for f in frames:
        if np.max(np.abs(f.orientation - iop)) > ORIENTATION_TOLERANCE:
            raise SeriesError(f"{f.path}: orientation {f.orientation.tolist()} differs from {iop.tolist()}")
        if np.max(np.abs(np.subtract(f.spacing, frames[0].spacing))) > 1e-6:
            raise SeriesError(f"{f.path}: Pixel Spacing {f.spacing} differs from {frames[0].spacing}")
    row_dir, col_dir = iop[:3], iop[3:]
    normal = np.cross(row_dir, col_dir)
    if np.linalg.norm(normal) < 0.5:
        raise SeriesError(f"Image Orientation (Patient) {iop.tolist()} is not two orthogonal directions")
    normal /= np.linalg.norm(normal)
    distance = np.array([f.position @ normal for f in frames])
    order = np.argsort(distance, kind="stable")
    frames = [frames[i] for i in order]
    distance = distance[order]
    gaps = np.diff(distance)
    if gaps.size and gaps.min() < POSITION_TOLERANCE:
        k = int(np.argmin(gaps))
        a, b = frames[k], frames[k + 1]
        raise SeriesError(
            f"two slices at the same position ({distance[k]:.3f} mm along the normal): "
            f"{a.path} frame {a.frame + 1} and {b.path} frame {b.frame + 1}"
        )

    volume = _decode_frames(frames, threads)
    rescaled = False
    if rescale:
        volume = _rescale(volume, frames, np.dtype(dtype))
        rescaled = True

    positions = np.array([f.position for f in frames])
    dr, dc = frames[0].spacing
    if len(frames) > 1:
        step = (positions[-1] - positions[0]) / (len(frames) - 1)
        slice_spacing = float(np.median(gaps))
        uniform = bool(np.all(np.abs(gaps - slice_spacing) <= max(0.01 * slice_spacing, POSITION_TOLERANCE)))
    else:
        thickness = _scalar(frames[0].header.get("SpacingBetweenSlices")) or _scalar(
            frames[0].header.get("SliceThickness")
        )
        slice_spacing = float(thickness or 1.0)
        step = normal * slice_spacing
        uniform = True
    affine = np.eye(4)
    affine[:3, 0] = row_dir * dc
    affine[:3, 1] = col_dir * dr
    affine[:3, 2] = step
    affine[:3, 3] = positions[0]
    return Series(
        volume=volume,
        affine=affine,
        spacing=(slice_spacing, float(dr), float(dc)),
        positions=positions,
        orientation=np.stack([row_dir, col_dir, normal]),
        series_uid=series_uid,
        sources=[(f.path, f.frame) for f in frames],
        uniform=uniform,
        rescaled=rescaled,
        header=frames[0].header,
    )


def _decode_frames(frames: list[_Frame], threads: int | None) -> np.ndarray:
    if all(f.frame == 0 for f in frames) and len({f.path for f in frames}) == len(frames):
        return decode([f.path for f in frames], frames=0, threads=threads)
    by_path: dict[str, list[tuple[int, int]]] = {}
    for k, f in enumerate(frames):
        by_path.setdefault(f.path, []).append((k, f.frame))
    volume: np.ndarray | None = None
    for path, pairs in by_path.items():
        part = decode([path], frames=[i for _, i in pairs], threads=threads)
        if volume is None:
            volume = np.empty((len(frames), *part.shape[1:]), dtype=part.dtype)
        elif part.shape[1:] != volume.shape[1:] or part.dtype != volume.dtype:
            raise SeriesError(f"{path}: frames of shape {part.shape[1:]} {part.dtype} differ from the others")
        volume[[k for k, _ in pairs]] = part
    assert volume is not None
    return volume


def _rescale(volume: np.ndarray, frames: list[_Frame], dtype: np.dtype) -> np.ndarray:
    out = np.empty(volume.shape, dtype=dtype)
    for k, f in enumerate(frames):
        if f.header.get("ModalityLUTSequence"):
            out[k] = processing.apply_modality_lut(volume[k], f.header)
            continue
        slope = 1.0 if f.slope is None else f.slope
        intercept = 0.0 if f.intercept is None else f.intercept
        if dtype.kind == "f":
            np.multiply(volume[k], slope, out=out[k], dtype=dtype, casting="unsafe")
            out[k] += intercept
        else:  # integer output: compute in float64, then round
            out[k] = np.rint(volume[k] * float(slope) + float(intercept))
    return out
