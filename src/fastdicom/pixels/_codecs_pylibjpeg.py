"""JPEG 2000 and HTJ2K through pylibjpeg-openjpeg (OpenJPEG): a pure-Python backend for where imagecodecs is not.

Importing this module fails without the ``openjpeg`` package
(``pip install pylibjpeg-openjpeg``), which tells the registry that this
implementation is missing. The contracts of ``fastdicom.pixels.codecs``
(decoders return a new array); the DICOM rules (sign, precision, colour) are
applied by the runner.
pylibjpeg-openjpeg encodes JPEG 2000 only (HTJ2K encoding has no twin here),
and always with 6 resolutions: frames under 32 rows or columns are refused.
"""

from __future__ import annotations

import numpy as np
import openjpeg
from openjpeg.utils import get_openjpeg_version

if tuple(get_openjpeg_version())[:2] < (2, 5):  # HTJ2K decoding came with OpenJPEG 2.5
    raise ImportError(f"pylibjpeg-openjpeg bundles OpenJPEG {get_openjpeg_version()}; 2.5 or later needed")

from .codecs import DecodeFrame, EncodeOptions, check_range, jp2_codestream

REQUIRES = "pylibjpeg-openjpeg"
#: Its decoders return a new array (they do not write into ``frame.out``).
WRITES_OUT: frozenset[str] = frozenset()
#: The runner finds the end of each codestream for them.
FINDS_END = False
_CODESTREAM = 0  # openjpeg's J2K (raw codestream) format


def jpeg2000_decode(data, frame: DecodeFrame) -> np.ndarray:
    """One J2K codestream (or JP2 file: its boxes ignored, as natively)."""
    return openjpeg.decode(jp2_codestream(data), j2k_format=_CODESTREAM)


def htj2k_decode(data, frame: DecodeFrame) -> np.ndarray:
    """HTJ2K through OpenJPEG's HT block decoder (OpenJPEG 2.5 and later)."""
    return openjpeg.decode(jp2_codestream(data), j2k_format=_CODESTREAM)


def jpeg2000_encode(frame: np.ndarray, options: EncodeOptions) -> bytes:
    """Twin of the native JPEG 2000 encoder: lossless (5/3, RCT for three samples) or lossy, irreversible
    (9/7, ICT) at the compression ratio ``options.ratio`` (OpenJPEG's rate, as natively). Even length."""
    bits_stored = options.bits_stored
    ratio = 0.0 if options.lossless else options.ratio
    frame = np.ascontiguousarray(frame)
    if frame.ndim not in (2, 3) or frame.dtype.itemsize > 2:
        raise ValueError(f"cannot encode a {frame.ndim}-D {frame.dtype} frame as JPEG 2000 here")
    check_range(frame, bits_stored, "JPEG 2000")
    if min(frame.shape[:2]) < 32:  # it always codes 6 resolutions (5 decomposition levels)
        raise ValueError("pylibjpeg-openjpeg cannot encode a frame under 32 rows or columns (6 resolutions)")
    frame = frame.astype(frame.dtype.newbyteorder("="), copy=False)
    colour = frame.ndim == 3 and frame.shape[2] == 3
    out = openjpeg.encode(
        frame,
        bits_stored=bits_stored,
        photometric_interpretation=1 if colour else 2,  # sRGB: MCT applied (YBR_RCT/YBR_ICT); greyscale
        use_mct=colour,
        compression_ratios=[float(ratio)] if ratio else None,
        codec_format=_CODESTREAM,
    )
    out = bytes(out)
    return out + b"\0" if len(out) % 2 else out
