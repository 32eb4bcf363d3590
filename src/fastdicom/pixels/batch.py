"""``fastdicom.decode``: many sources, one stacked array, every core.

Headers are read first (Python, fast); then frames are decoded by a thread
pool. Native codecs and numpy copies release the GIL, so threads run in
parallel. Order is kept: frame ``j`` of source ``k`` lands after every frame
of sources ``0..k-1``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, overload

import numpy as np

from ..dataset.dataset import Dataset
from ..dataset.read import read
from ..errors import FastDicomError


class DecodeError(FastDicomError):
    """Decoding one item of a batch failed; ``source`` and ``frame`` name it."""

    def __init__(self, message: str, source: Any, frame: int | None) -> None:
        super().__init__(message)
        self.source = source
        self.frame = frame


@dataclass
class DecodeReport:
    """Result of ``decode(..., errors="collect")``: the array and what failed (zero-filled there)."""

    array: np.ndarray
    failures: list[DecodeError] = field(default_factory=list)


def _name(src: Any) -> str:
    if isinstance(src, Dataset):
        return src.filename or "<Dataset>"
    if isinstance(src, (str, os.PathLike)):
        return os.fspath(src)
    return f"<{type(src).__name__}>"


@overload
def decode(
    sources: Iterable[Any],
    *,
    frames: int | Sequence[int] | None = None,
    out: np.ndarray | None = None,
    threads: int | None = None,
    errors: Literal["raise"] = "raise",
) -> np.ndarray: ...
@overload
def decode(
    sources: Iterable[Any],
    *,
    frames: int | Sequence[int] | None = None,
    out: np.ndarray | None = None,
    threads: int | None = None,
    errors: Literal["collect"],
) -> DecodeReport: ...
@overload
def decode(
    sources: Iterable[Any],
    *,
    frames: int | Sequence[int] | None = None,
    out: np.ndarray | None = None,
    threads: int | None = None,
    errors: str = "raise",
) -> np.ndarray | DecodeReport: ...


def decode(
    sources: Iterable[Any],
    *,
    frames: int | Sequence[int] | None = None,
    out: np.ndarray | None = None,
    threads: int | None = None,
    errors: str = "raise",
) -> np.ndarray | DecodeReport:
    """Decode the frames of many sources into one array.

    Parameters
    ----------
    sources : iterable
        Paths, :class:`~fastdicom.Dataset` objects or buffers.
    frames : int or sequence of int, optional
        Which frames of each source (default: all of them).
    out : ndarray, optional
        Filled in place; shape ``(total_frames, rows, columns[, samples])``.
    threads : int, optional
        Worker threads (default: the number of cores).
    errors : {"raise", "collect"}
        ``"raise"``: the first failure raises :class:`DecodeError` naming the
        item. ``"collect"``: failed frames are zero-filled and reported.

    Returns
    -------
    ndarray, or DecodeReport with ``errors="collect"``

    Examples
    --------
    >>> volume = fastdicom.decode(sorted(glob.glob("series/*.dcm")))  # doctest: +SKIP
    """
    if errors not in ("raise", "collect"):
        raise ValueError("errors must be 'raise' or 'collect'")
    items = list(sources)
    tasks: list[tuple[int, Any, Any, int]] = []  # (output index, source, Frames, frame index)
    failures: list[DecodeError] = []
    geometry: tuple[tuple[int, ...], np.dtype] | None = None
    for src in items:
        try:
            ds = src if isinstance(src, Dataset) else read(src)
            px = ds.pixels
            if px is None:
                raise FastDicomError("no Pixel Data")
            px.check_size()  # before the output is sized from the headers
        except FastDicomError as exc:
            err = DecodeError(f"{_name(src)}: {exc}", src, None)
            if errors == "raise":
                raise err from exc
            failures.append(err)
            continue
        g = (px.shape[1:], px.dtype)
        if geometry is None:
            geometry = g
        elif g != geometry:
            err = DecodeError(
                f"{_name(src)}: frames of shape {g[0]} {g[1]} differ from {geometry[0]} {geometry[1]}", src, None
            )
            if errors == "raise":
                raise err
            failures.append(err)
            continue
        wanted = range(len(px)) if frames is None else ([frames] if isinstance(frames, int) else list(frames))
        for i in wanted:
            tasks.append((len(tasks), src, px, i))
    if geometry is None:
        if errors == "raise":
            raise DecodeError("no decodable source", None, None)
        return DecodeReport(np.empty((0,)), failures)
    shape = (len(tasks), *geometry[0])
    if out is None:
        out = np.empty(shape, dtype=geometry[1])
    elif out.shape != shape:
        raise ValueError(f"out has shape {out.shape}, the frames need {shape}")

    def work(task: tuple[int, Any, Any, int]) -> DecodeError | None:
        k, src, px, i = task
        try:
            px.frame_into(i, out[k])
            return None
        except (FastDicomError, IndexError) as exc:
            out[k] = 0
            return DecodeError(f"{_name(src)} frame {i}: {exc}", src, i)

    n = threads or os.cpu_count() or 1
    if n == 1 or len(tasks) < 2:
        results = [work(t) for t in tasks]
    else:
        with ThreadPoolExecutor(max_workers=n) as pool:
            results = list(pool.map(work, tasks))
    for result in results:
        if result is not None:
            if errors == "raise":
                raise result
            failures.append(result)
    return DecodeReport(out, failures) if errors == "collect" else out
