"""Pixel value transforms: Modality LUT and rescale, VOI LUT and windowing,
MONOCHROME1 inversion, PALETTE COLOR lookup, YBR_FULL to RGB.

The functions that take a data set follow pydicom 3's ``pydicom.pixels``
processing functions of the same names (same results on the same input) and
read the attributes from a fastdicom :class:`~fastdicom.Dataset` (a pydicom
Dataset works too). The arithmetic runs in one pass over the pixels in the
Cython kernels (``native/_kernels.pyx``) with the GIL released, or in their
numpy twins (``fastdicom._kernels_py``) under ``FASTDICOM_BACKEND=python``;
both give the same bits except SIGMOID windowing, whose ``exp`` may differ in
the last place.

Values are clipped where pydicom's would wrap: a LUT index is computed in 64
bits, so a stored value far outside the LUT maps to its first or last entry.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from .. import _backends

__all__ = [
    "apply_color_lut",
    "apply_modality_lut",
    "apply_rescale",
    "apply_voi",
    "apply_voi_lut",
    "apply_windowing",
    "convert_color_space",
    "invert_monochrome1",
    "lut",
    "rescale",
    "window",
]

_PIXEL_TYPES = frozenset("u1 i1 u2 i2 u4 i4 f4 f8".split())
_INT_TYPES = frozenset("u1 i1 u2 i2 u4 i4 i8".split())


def _kernels(backend: str | None):
    return _backends.resolve("processing", backend)[1]


def _flat(arr: np.ndarray, allowed: frozenset, fallback: str) -> np.ndarray:
    a = np.asarray(arr)
    key = f"{a.dtype.kind}{a.dtype.itemsize}"
    if key not in allowed or not a.dtype.isnative:
        a = a.astype(fallback if key not in allowed else a.dtype.newbyteorder("="))
    return np.ascontiguousarray(a).reshape(-1)


def _first(value: Any, index: int) -> Any:
    return value[index] if isinstance(value, (list, tuple)) else value


# -- kernels on plain numbers ---------------------------------------------------------------


def rescale(arr: np.ndarray, slope: float, intercept: float, *, backend: str | None = None) -> np.ndarray:
    """``arr * slope + intercept`` as float64 in one pass (PS3.3 C.11.1.1.2)."""
    src = _flat(arr, _PIXEL_TYPES, "f8")
    out = np.empty(src.shape, dtype=np.float64)
    _kernels(backend).rescale(src, float(slope), float(intercept), out)
    return out.reshape(np.shape(arr))


def lut(arr: np.ndarray, table: Any, first_map: int = 0, *, backend: str | None = None) -> np.ndarray:
    """Map integer values through one LUT (or several: one output channel per row of ``table``).

    ``table`` is 1-D (entries) or 2-D (channels, entries) of uint8 or uint16.
    Values below ``first_map`` map to the first entry, values past the end
    to the last, as PS3.3 C.11.1.1 says.
    """
    a = np.asarray(arr)
    if a.dtype.kind == "f":  # e.g. after a rescale: index by the integer part, as pydicom does (it warns)
        a = np.floor(a).astype(np.int64)
    elif a.dtype.kind not in "iub":
        raise TypeError(f"LUTs apply to integer pixel values, not {a.dtype}")
    t = np.asarray(table)
    if t.dtype not in (np.uint8, np.uint16):
        t = t.astype(np.uint16)
    luts = np.ascontiguousarray(t.reshape(1, -1) if t.ndim == 1 else t)
    src = _flat(a, _INT_TYPES, "i8")
    out = np.empty((src.shape[0], luts.shape[0]), dtype=luts.dtype)
    _kernels(backend).apply_lut(src, luts, int(first_map), out)
    return out.reshape(a.shape) if t.ndim == 1 else out.reshape(a.shape + (luts.shape[0],))


def window(
    arr: np.ndarray,
    center: float,
    width: float,
    *,
    function: str = "LINEAR",
    y_min: float = 0.0,
    y_max: float = 255.0,
    backend: str | None = None,
) -> np.ndarray:
    """Window ``arr`` into ``[y_min, y_max]`` (float64) with a VOI LUT Function (PS3.3 C.11.2.1.2).

    ``function`` is LINEAR, LINEAR_EXACT or SIGMOID; widths the standard
    forbids (below 1 for LINEAR, not positive for the others) raise ValueError.
    """
    func = function.strip().upper()
    src = _flat(arr, _PIXEL_TYPES, "f8")
    out = np.empty(src.shape, dtype=np.float64)
    k = _kernels(backend)
    center, width, y_min, y_max = float(center), float(width), float(y_min), float(y_max)
    if func in ("LINEAR", "LINEAR_EXACT"):
        exact = func == "LINEAR_EXACT"
        if (not exact and width < 1) or (exact and width <= 0):
            raise ValueError(f"Window Width {width} is not allowed for the {func} VOI LUT Function")
        k.window_linear(src, center, width, y_min, y_max, exact, out)
    elif func == "SIGMOID":
        if width <= 0:
            raise ValueError(f"Window Width {width} is not allowed for the SIGMOID VOI LUT Function")
        k.window_sigmoid(src, center, width, y_min, y_max, out)
    else:
        raise ValueError(f"unsupported VOI LUT Function {function!r}")
    return out.reshape(np.shape(arr))


# -- data set driven, as pydicom.pixels.processing ---------------------------------------------


def _entries(n: int) -> int:
    """The number of LUT entries from a descriptor's first value: read as SS it may be negative; 0 means 65536."""
    return int(n) % 65536 or 65536


def _little(ds) -> bool:
    little = getattr(ds, "is_little_endian", None)
    if little is None:  # a pydicom Dataset
        little = getattr(ds, "original_encoding", (None, True))[1]
    return bool(True if little is None else little)


def _lut_words(data: Any, count: int, ds, dtype: str) -> np.ndarray:
    """LUT Data as integers: a list of US values, or OW bytes read as 16-bit words in the data set's order."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        fmt = ("<" if _little(ds) else ">") + f"{count}H"
        if len(data) < struct.calcsize(fmt):
            raise ValueError(f"LUT Data holds {len(data)} bytes, fewer than {count} entries")
        data = struct.unpack_from(fmt, data)
    elif not isinstance(data, (list, tuple)):
        data = [data]
    return np.asarray(data, dtype=np.int64).astype(dtype)


def apply_modality_lut(arr: np.ndarray, ds, *, backend: str | None = None) -> np.ndarray:
    """The Modality LUT Sequence's first LUT, else Rescale Slope/Intercept (float64), else ``arr``."""
    seq = ds.get("ModalityLUTSequence")
    if seq:
        item = seq[0]
        entries, first_map, depth = item.get("LUTDescriptor")
        entries = _entries(entries)
        table = _lut_words(item.get("LUTData"), entries, ds, f"uint{depth}" if depth in (8, 16) else "uint16")
        return lut(arr, table[:entries], first_map, backend=backend)
    slope = ds.get("RescaleSlope")
    intercept = ds.get("RescaleIntercept")
    if "RescaleSlope" in ds and "RescaleIntercept" in ds:
        return rescale(arr, _first(slope, 0), _first(intercept, 0), backend=backend)
    return arr


apply_rescale = apply_modality_lut


def apply_voi(arr: np.ndarray, ds, index: int = 0, *, backend: str | None = None) -> np.ndarray:
    """The VOI LUT Sequence's LUT ``index``, or ``arr`` without one."""
    seq = ds.get("VOILUTSequence")
    if not seq:
        return arr
    item = seq[index]
    entries, first_map, depth = item.get("LUTDescriptor")
    entries = _entries(entries)
    if depth == 8:
        dtype = "uint8"
    elif 10 <= depth <= 16:
        dtype = "uint16"
    else:
        raise NotImplementedError(f"{depth} bits per LUT entry is not supported")
    table = _lut_words(item.get("LUTData"), entries, ds, dtype)
    return lut(arr, table[:entries], first_map, backend=backend)


def _output_range(ds) -> tuple[float, float]:
    """Range of the values windowing maps to: the stored range, through the Modality LUT or rescale."""
    seq = ds.get("ModalityLUTSequence")
    if seq:
        return 0.0, float(2 ** seq[0].get("LUTDescriptor")[2] - 1)
    bits = int(ds.get("BitsStored"))
    if ds.get("PixelRepresentation") == 0:
        y_min, y_max = 0.0, float(2**bits - 1)
    else:
        y_min, y_max = float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)
    slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
    if slope is not None and intercept is not None:
        slope, intercept = float(_first(slope, 0)), float(_first(intercept, 0))
        y_min = y_min * slope + intercept
        y_max = y_max * slope + intercept
    return y_min, y_max


def apply_windowing(arr: np.ndarray, ds, index: int = 0, *, backend: str | None = None) -> np.ndarray:
    """Window Center/Width ``index`` with the data set's VOI LUT Function; ``arr`` without them."""
    if "WindowWidth" not in ds and "WindowCenter" not in ds:
        return arr
    if ds.get("PhotometricInterpretation") not in ("MONOCHROME1", "MONOCHROME2"):
        raise ValueError("windowing applies to MONOCHROME1 and MONOCHROME2 only")
    y_min, y_max = _output_range(ds)
    return window(
        arr,
        _first(ds.get("WindowCenter"), index),
        _first(ds.get("WindowWidth"), index),
        function=ds.get("VOILUTFunction") or "LINEAR",
        y_min=y_min,
        y_max=y_max,
        backend=backend,
    )


def apply_voi_lut(
    arr: np.ndarray, ds, index: int = 0, prefer_lut: bool = True, *, backend: str | None = None
) -> np.ndarray:
    """The VOI LUT or the window, whichever the data set has (the LUT when both, unless ``prefer_lut`` is False)."""
    seq = ds.get("VOILUTSequence")
    has_lut = bool(seq) and seq[0].get("LUTDescriptor") is not None and seq[0].get("LUTData") is not None
    has_window = ds.get("WindowCenter") is not None and ds.get("WindowWidth") is not None
    if has_lut and (prefer_lut or not has_window):
        return apply_voi(arr, ds, index, backend=backend)
    if has_window:
        return apply_windowing(arr, ds, index, backend=backend)
    return arr


def invert_monochrome1(
    arr: np.ndarray, ds=None, *, low: float | None = None, high: float | None = None, backend: str | None = None
) -> np.ndarray:
    """MONOCHROME1 to MONOCHROME2: ``low + high - arr``, in the type of ``arr``.

    The range is ``low``/``high`` when given; otherwise from ``ds``: the stored
    range (Bits Stored, Pixel Representation) for integer arrays, and the
    range :func:`apply_windowing` maps to for float arrays.
    """
    a = np.asarray(arr)
    if low is None or high is None:
        if ds is None:
            raise ValueError("give the value range (low, high) or the data set")
        if a.dtype.kind == "f":
            low, high = _output_range(ds)
        else:
            bits = int(ds.get("BitsStored"))
            signed = ds.get("PixelRepresentation") == 1
            low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    src = _flat(a, _PIXEL_TYPES, "f8" if a.dtype.kind == "f" else "i4")
    out = np.empty_like(src)
    _kernels(backend).invert(src, float(low), float(high), out)
    return out.reshape(a.shape)


def _expand_segmented(words: list[int], dtype: str, little: bool, limit: int = 65536) -> np.ndarray:
    """Segmented palette LUT data (PS3.3 C.7.9.2): discrete, linear and indirect segments.

    Malformed data (truncated segments, zero-length linear segments, output
    past ``limit`` entries) raises ValueError.
    """
    try:
        return _expand_segmented_checked(words, dtype, little, limit)
    except (IndexError, ZeroDivisionError, RecursionError):
        raise ValueError("segmented LUT data is malformed") from None


def _expand_segmented_checked(words: list[int], dtype: str, little: bool, limit: int) -> np.ndarray:
    out: list[int] = []
    eight_bit = dtype == "uint8"

    def run(start: int, stop_after: int | None, last: int | None, depth: int) -> None:
        if depth > 8:
            raise ValueError("segmented LUT: indirect segments nest too deep")
        pos, done = start, 0
        while pos + 1 < len(words):
            opcode, length = words[pos], words[pos + 1]
            pos += 2
            if opcode == 0:  # discrete
                out.extend(words[pos : pos + length])
                pos += length
            elif opcode == 1:  # linear, from the last value so far
                y0 = out[-1] if out else last
                if y0 is None:
                    raise ValueError("segmented LUT: a linear segment cannot come first")
                y1 = words[pos]
                pos += 1
                if y0 == y1:
                    out.extend([y1] * length)
                else:
                    step = (y1 - y0) / length
                    ramp = np.linspace(y0 + step, y1, length, dtype=np.float64)
                    out.extend(int(v) for v in np.rint(ramp))
            elif opcode == 2:  # indirect: replay `length` segments found at a word offset
                if not out:
                    raise ValueError("segmented LUT: an indirect segment cannot come first")
                if eight_bit:
                    b = [words[pos + i] for i in ((3, 2, 1, 0) if little else (2, 3, 0, 1))]
                    offset = (b[0] << 8 | b[1]) << 16 | (b[2] << 8 | b[3])
                    pos += 4
                else:
                    offset = words[pos + 1] << 16 | words[pos]
                    pos += 2
                run(offset, length, out[-1], depth + 1)
            else:
                raise ValueError(f"segmented LUT: unknown segment type {opcode}")
            if len(out) > limit:
                raise ValueError(f"segmented LUT expands past its {limit} entries")
            done += 1
            if done == stop_after:
                return

    run(0, None, None, 0)
    return np.asarray(out, dtype=np.int64).astype(dtype)


def apply_color_lut(arr: np.ndarray, ds, *, backend: str | None = None) -> np.ndarray:
    """PALETTE COLOR to RGB(A) through the Palette Color Lookup Tables, plain or segmented.

    Returns ``arr.shape + (3,)`` (or 4 with an alpha table) of uint8 or uint16,
    as the tables' depth says. The well-known palettes named by UID are not
    built in.
    """
    if ds.get("PixelPresentation") in ("MIXED", "COLOR"):
        raise ValueError("the Supplemental Palette Color Lookup Table Module is not supported")
    desc = ds.get("RedPaletteColorLookupTableDescriptor")
    if desc is None:
        raise ValueError("no Palette Color Lookup Table Module in the data set")
    entries, first_map, depth = desc
    entries = _entries(entries)
    names = ("Red", "Green", "Blue", "Alpha")
    plain = [ds.get(f"{c}PaletteColorLookupTableData") for c in names]
    segmented = [ds.get(f"Segmented{c}PaletteColorLookupTableData") for c in names]
    tables: list[np.ndarray] = []
    if plain[0] is not None:
        present = [d for d in plain if d]
        if isinstance(present[0], (list, tuple)):
            width = 16
            tables = [np.asarray(d, dtype=np.uint16) for d in present]
        else:
            raw = [bytes(d) for d in present]
            width = round(len(raw[0]) * 8 / entries)
            if width not in (8, 16):
                raise ValueError(f"palette LUT entries of {len(raw[0]) * 8 / entries:.1f} bits are not supported")
            order = "<" if _little(ds) else ">"
            tables = [np.frombuffer(d, dtype=f"{order}u{width // 8}").astype(f"u{width // 8}") for d in raw]
    elif segmented[0] is not None:
        width = depth
        if width not in (8, 16):
            raise ValueError(f"palette LUT entries of {width} bits are not supported")
        fmt = "B" if width == 8 else "H"
        order = "<" if _little(ds) else ">"
        for d in segmented:
            if d:
                b = bytes(d)
                words = list(
                    struct.unpack(f"{order}{len(b) // (width // 8)}{fmt}", b[: len(b) // (width // 8) * (width // 8)])
                )
                tables.append(_expand_segmented(words, f"uint{width}", order == "<", entries))
    else:
        raise ValueError("no Palette Color Lookup Table Data in the data set")
    if any(len(t) != len(tables[0]) for t in tables):
        raise ValueError("palette LUTs differ in length")
    return lut(arr, np.stack(tables).astype(f"uint{width}"), first_map, backend=backend)


def convert_color_space(arr: np.ndarray, current: str, desired: str, *, backend: str | None = None) -> np.ndarray:
    """YBR_FULL / YBR_FULL_422 to RGB for 8-bit data (other pairs of these three names return ``arr``)."""
    a = np.asarray(arr)
    ybr = ("YBR_FULL", "YBR_FULL_422")
    if current in ybr and desired == "RGB":
        if a.dtype != np.uint8 or a.shape[-1] != 3:
            raise ValueError("YBR_FULL to RGB needs uint8 pixels with 3 samples last")
        src = np.ascontiguousarray(a).reshape(-1, 3)
        out = np.empty_like(src)
        _kernels(backend).ybr_full_to_rgb(src, out)
        return out.reshape(a.shape)
    if current == desired or (current in ybr and desired in ybr):
        return a
    raise NotImplementedError(f"conversion from {current} to {desired} is not supported")
