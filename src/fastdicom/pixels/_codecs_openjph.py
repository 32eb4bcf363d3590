"""HTJ2K (JPEG 2000 Part 15) through OpenJPH 0.9: the Cython binding ``fastdicom._cy._openjph``.

The contracts of ``fastdicom.pixels.codecs``, with the same results as the
HTJ2K functions of ``_codecs_rust`` (decode) and ``_codecs_imagecodecs``
(decode, encode): one frame's codestream and its ``DecodeFrame`` in,
``frame.out`` or a new ndarray out (``(rows, columns)`` or ``(rows, columns,
samples)``; uint8/int8 up to 8 bits, uint16/int16 up to 16, by the
codestream's precision and sign), the multi-component transform (RCT/ICT)
undone by OpenJPH. Decoding and encoding run with the GIL released, so frames go
through in parallel threads.

What OpenJPH 0.9 cannot do, refused with ValueError rather than done wrong:
precisions above 16 bits (its 32-bit block coder fails on many images from
about 19 bits), non-HT (Part 1) code-blocks, subsampled components, and tiles
smaller than their decomposition levels allow (it decodes those wrongly).
"""

from __future__ import annotations

import numpy as np

from .._cy import _openjph
from .codecs import DecodeFrame, EncodeOptions

__version__ = _openjph.__version__

_DTYPES: dict[tuple[int, bool], type[np.integer]] = {
    (1, False): np.uint8,
    (1, True): np.int8,
    (2, False): np.uint16,
    (2, True): np.int16,
}


#: The decoders that write into ``frame.out`` (when its item size is 1, 2 or 4 bytes).
WRITES_OUT = frozenset(("htj2k_decode",))
#: The structural pre-check finds the end of the codestream (EOC) itself, padding after it allowed.
FINDS_END = True

#: OpenJPH 0.9's refusals of valid codestreams: Part 1 code-blocks, tiles too small for their levels, > 16 bits.
_NOT_OPENJPH = ("Rsiz bit 14 not set", "OpenJPH 0.9 cannot decode it", "is not supported (1 to")


def htj2k_decode(data, frame: DecodeFrame) -> np.ndarray:
    """Decode one HTJ2K frame through OpenJPH; what OpenJPH 0.9 refuses goes to OpenJPEG when built.

    OpenJPEG (the Rust extension) decodes what OpenJPH 0.9 cannot (more than
    16 bits, tiles smaller than their levels, Part 1 code-blocks); a stream
    both refuse raises OpenJPH's error.
    """
    try:
        return _decode(data, frame)
    except ValueError as first:
        # Only what OpenJPH cannot do goes on; a corrupt or truncated stream stays an error
        # (OpenJPEG decodes some of those silently).
        if not any(m in str(first) for m in _NOT_OPENJPH):
            raise
        try:
            from . import _codecs_rust
        except ImportError:
            raise first from None
        try:
            return _codecs_rust.htj2k_decode(data, frame)
        except ValueError:
            raise first from None


def _decode(data, frame: DecodeFrame) -> np.ndarray:
    """Decode one HTJ2K frame; the header is checked against the frame's shape first.

    Into ``frame.out`` when it is an integer array of 1, 2 or 4 bytes a
    sample (no allocation, no copy): its samples the codestream's two's
    complement in its item size (what ``astype`` gives). Otherwise into a new
    array of the codestream's precision and sign. OpenJPH 0.9 decodes one
    frame on one thread (``frame.threads`` is for OpenJPEG).
    """
    out = frame.out
    rows, columns, samples = frame.rows, frame.columns, frame.samples
    if out.dtype.kind in "iu" and out.dtype.itemsize in (1, 2, 4) and out.dtype.isnative:
        _openjph.decode_into(data, out.reshape(-1).view(np.uint8), rows, columns, samples, out.dtype.itemsize)
        return out
    precision, signed = _openjph.read_header(data)[3:5]
    arr = np.empty(frame.shape, dtype=_DTYPES[(1 if precision <= 8 else 2, bool(signed))])
    _openjph.decode_into(data, arr.reshape(-1).view(np.uint8), rows, columns, samples, arr.dtype.itemsize)
    return arr


def levels_for(rows: int, columns: int, rpcl: bool = False) -> int:
    """Wavelet decomposition levels: 5, fewer when the smaller side is under 32; for RPCL as many as PS3.5 asks.

    PS3.5 10.18 (HTJ2K Lossless RPCL): enough levels for the lowest
    resolution to be at most 64 samples wide and high.
    """
    levels = 5
    while levels and (1 << levels) > min(rows, columns):
        levels -= 1
    if rpcl:
        while -(-max(rows, columns) >> levels) > 64:
            levels += 1
    return levels


def add_tlm(codestream: bytes) -> bytes:
    """The codestream with a TLM marker segment (tile-part lengths) before its first SOT.

    OpenJPH 0.9 cannot write one and HTJ2K Lossless RPCL requires it
    (PS3.5 10.18). Ttlm 16 bits, Ptlm 32 bits (Stlm 0x60), one pair per tile-part.
    """
    pos = 2
    while codestream[pos : pos + 2] != b"\xff\x90":
        if pos + 4 > len(codestream):
            raise ValueError("no SOT marker in the codestream")
        pos += 2 + int.from_bytes(codestream[pos + 2 : pos + 4], "big")
    first = pos
    pairs = []
    while codestream[pos : pos + 2] == b"\xff\x90":
        length = int.from_bytes(codestream[pos + 6 : pos + 10], "big") or len(codestream) - 2 - pos
        pairs.append(codestream[pos + 4 : pos + 6] + length.to_bytes(4, "big"))
        pos += length
    if not pairs or len(pairs) > 10921:
        raise ValueError("cannot list the tile-parts in one TLM marker segment")
    tlm = b"\xff\x55" + (4 + 6 * len(pairs)).to_bytes(2, "big") + b"\x00\x60" + b"".join(pairs)
    return codestream[:first] + tlm + codestream[first:]


def htj2k_encode(frame: np.ndarray, options: EncodeOptions) -> bytes:
    """One frame (``(rows, columns)`` or ``(rows, columns, samples)``, integers) as a raw HTJ2K codestream.

    Lossless: the reversible 5/3 wavelet, RCT for three samples; lossy:
    irreversible (9/7 wavelet, ICT) with the base quantisation step
    ``options.qstep`` (relative to the sample range: 1/256 is about one 8-bit
    grey level). ``options.rpcl``: what HTJ2K Lossless RPCL asks (RPCL,
    which every frame gets, enough decomposition levels, a TLM marker
    segment). The codestream precision is Bits Stored, signed for signed
    dtypes; values outside its range raise ValueError. Even length (one
    0x00 pad).
    """
    frame = np.ascontiguousarray(frame)
    if frame.dtype.kind not in "iu" or frame.ndim not in (2, 3):
        raise ValueError(f"cannot encode a {frame.ndim}-D {frame.dtype} frame as HTJ2K")
    frame = frame.astype(frame.dtype.newbyteorder("="), copy=False)
    rows, columns = frame.shape[:2]
    samples = frame.shape[2] if frame.ndim > 2 else 1
    out = _openjph.encode(
        frame.reshape(-1).view(np.uint8),
        rows,
        columns,
        samples,
        frame.dtype.itemsize,
        options.bits_stored,
        frame.dtype.kind == "i",
        0.0 if options.lossless else float(options.qstep),
        levels_for(rows, columns, options.rpcl),
    )
    if options.rpcl:
        out = add_tlm(out)
    return out + b"\0" if len(out) % 2 else out
