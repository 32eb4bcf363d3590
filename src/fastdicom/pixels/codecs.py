"""Compressed frames: which codec serves a transfer syntax, and the DICOM rules decoders get wrong.

Decoders come from the registry (capabilities ``jpeg``, ``jpegls``,
``jpeg2000``, ``htj2k``, ``deflate_image``): the native ones in the Rust
extension (libjpeg-turbo, CharLS, OpenJPEG) and OpenJPH's Cython binding
first; then the pure-Python backends, each over a library a user may have
installed: imagecodecs (every codec), pylibjpeg-openjpeg (JPEG 2000, HTJ2K),
pyjpegls (JPEG-LS) and glymur (JPEG 2000, HTJ2K; decoding through a temporary
file); the standard library for deflate. Without one,
decoding raises :class:`NoDecoderError` naming what to install.

What is applied after a decoder, as pydicom 3 does:

- the decoded shape must be (rows, columns[, samples]): anything else is an error,
  not a reshape;
- samples come out interleaved whatever Planar Configuration says (it does
  not apply to compressed data);
- the bytes are reinterpreted in the frame's type (Pixel Representation
  decides signed or not) and, for signed data with Bits Stored below Bits
  Allocated, sign-extended from Bits Stored (JPEG-LS and JPEG 2000 codestreams
  of signed data are often unsigned);
- JPEG decoders convert YCbCr to RGB and JPEG 2000 decoders undo the RCT/ICT:
  such frames are reported as RGB (:func:`decoded_photometric`), so nobody
  converts them twice. Whether a 3-component JPEG frame holds YCbCr is
  decided per frame from its markers (:func:`jpeg_is_ycbcr`; the native
  decoder applies the same rule in C).

Corrupt data policy: a codestream without its end marker, one whose header
disagrees with the data set, a JPEG whose entropy-coded data ends early or
breaks its codes (libjpeg's "premature end", "bad Huffman code" and resync
warnings, which it would otherwise answer with grey pixels), and arithmetic
or progressive JPEG (no process of the DICOM JPEG syntaxes; cut streams of
either decode silently) raise InvalidDicomError. Damage that a decoder
resynchronises past (a flipped bit inside Huffman-coded data) cannot be
seen by any decoder and comes out as wrong pixels.

A decoder that fails, or returns fewer pixels than the frame has (a truncated
codestream some libraries decode silently), raises
:class:`~fastdicom.errors.InvalidDicomError`.
"""

from __future__ import annotations

import functools
import inspect

import numpy as np

from .. import _backends
from ..errors import BackendError, FastDicomError, InvalidDicomError

JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"
JPEG_LOSSLESS_P14 = "1.2.840.10008.1.2.4.57"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
JPEG_LS_NEAR_LOSSLESS = "1.2.840.10008.1.2.4.81"
JPEG_2000_LOSSLESS = "1.2.840.10008.1.2.4.90"
JPEG_2000 = "1.2.840.10008.1.2.4.91"
HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"
HTJ2K_LOSSLESS_RPCL = "1.2.840.10008.1.2.4.202"
HTJ2K = "1.2.840.10008.1.2.4.203"
DEFLATED_IMAGE_FRAME = "1.2.840.10008.1.2.8.1"

#: transfer syntax -> registry capability
CAPABILITY = {
    JPEG_BASELINE: "jpeg",
    JPEG_EXTENDED: "jpeg",
    JPEG_LOSSLESS_P14: "jpeg",
    JPEG_LOSSLESS_SV1: "jpeg",
    JPEG_LS_LOSSLESS: "jpegls",
    JPEG_LS_NEAR_LOSSLESS: "jpegls",
    JPEG_2000_LOSSLESS: "jpeg2000",
    JPEG_2000: "jpeg2000",
    HTJ2K_LOSSLESS: "htj2k",
    HTJ2K_LOSSLESS_RPCL: "htj2k",
    HTJ2K: "htj2k",
    DEFLATED_IMAGE_FRAME: "deflate_image",
}
#: What to install for each capability when no implementation is present.
INSTALL = {
    "jpeg": "imagecodecs",
    "jpegls": "imagecodecs (or pyjpegls)",
    "jpeg2000": "imagecodecs (or pylibjpeg-openjpeg, or glymur with libopenjp2 2.4)",
    "htj2k": "imagecodecs (or pylibjpeg-openjpeg, or glymur with libopenjp2 2.5)",
}
LOSSY = frozenset((JPEG_BASELINE, JPEG_EXTENDED, JPEG_LS_NEAR_LOSSLESS, JPEG_2000, HTJ2K))


class NoDecoderError(FastDicomError):
    """No codec can decode this transfer syntax here (the message names what to install)."""


def decoded_photometric(transfer_syntax: str, photometric: str, samples: int) -> str:
    """The colour space of decoded frames (decoders convert YCbCr and undo the J2K transforms)."""
    if samples == 3:
        cap = CAPABILITY.get(transfer_syntax)
        if cap == "jpeg" and photometric in ("YBR_FULL", "YBR_FULL_422"):
            return "RGB"
        if cap in ("jpeg2000", "htj2k") and photometric in ("YBR_RCT", "YBR_ICT"):
            return "RGB"
    return photometric


def jpeg_is_ycbcr(data, photometric: str) -> bool:
    """Whether a 3-component JPEG codestream holds YCbCr (to be converted) rather than RGB.

    Decided per frame from the markers, as libjpeg reads them, with the data
    set's Photometric Interpretation where the markers are silent: an Adobe
    APP14 marker's transform flag (0: RGB, otherwise YCbCr); else a JFIF APP0
    marker (YCbCr); else component identifiers 'R', 'G', 'B' (RGB); else
    YCbCr for YBR_* and RGB for RGB (PS3.5 8.2.1: RGB means "no colour
    transform"; libjpeg alone would guess YCbCr).
    """
    b = bytes(data[:65536]) if not isinstance(data, bytes) else data[:65536]
    jfif = False
    adobe = None
    ids = None
    pos = 2 if b[:2] == b"\xff\xd8" else 0
    while pos + 4 <= len(b):
        if b[pos] != 0xFF:
            break
        marker = b[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        seg = int.from_bytes(b[pos + 2 : pos + 4], "big")
        body = b[pos + 4 : pos + 2 + seg]
        if marker == 0xE0 and body[:5] == b"JFIF\0":
            jfif = True
        elif marker == 0xEE and body[:5] == b"Adobe" and len(body) >= 12:
            adobe = body[11]
        elif marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            if len(body) >= 6:
                n = body[5]
                ids = bytes(body[6 + 3 * k] for k in range(n) if 6 + 3 * k < len(body))
        elif marker == 0xDA:  # start of scan: the headers are over
            break
        pos += 2 + seg
    if adobe is not None:
        return adobe != 0
    if jfif:
        return True
    if ids == b"RGB":
        return False
    return photometric != "RGB"


def check_range(frame: np.ndarray, bits_stored: int, what: str) -> None:
    """Integer samples within Bits Stored (two's complement for signed dtypes): what a codec can keep
    exactly. Raises ValueError otherwise, instead of letting the encoder clip, wrap or overflow them."""
    if frame.dtype.kind not in "iu":
        raise ValueError(f"cannot encode {frame.dtype} samples as {what}")
    if bits_stored < 1:
        raise ValueError(f"Bits Stored {bits_stored}: {what} needs at least 1")
    if bits_stored >= 8 * frame.dtype.itemsize:  # every value of the dtype fits
        return
    signed = frame.dtype.kind == "i"
    lo, hi = (-(1 << (bits_stored - 1)), (1 << (bits_stored - 1)) - 1) if signed else (0, (1 << bits_stored) - 1)
    if frame.size and (int(frame.min()) < lo or int(frame.max()) > hi):
        raise ValueError(f"pixel values lie outside Bits Stored ({bits_stored}): {what} cannot keep them")


def jp2_codestream(data) -> bytes:
    """The J2K codestream of a frame: the frame itself, or the contiguous codestream box (jp2c) of a JP2 file.

    DICOM says the JP2 boxes around a codestream carry nothing that applies
    (PS3.5 A.4.4): the native decoder ignores palette, component mapping and
    channel definition boxes, and the twins decode only the codestream so
    that they give the same samples. A JP2 file without a codestream box, or
    with a box that runs past the data, raises ValueError.
    """
    b = bytes(data)
    if b[4:8] != b"jP  ":
        return b
    pos = 0
    while pos + 8 <= len(b):
        length = int.from_bytes(b[pos : pos + 4], "big")
        kind = b[pos + 4 : pos + 8]
        head = 8
        if length == 1:
            if pos + 16 > len(b):
                break
            length = int.from_bytes(b[pos + 8 : pos + 16], "big")
            head = 16
        elif length == 0:
            length = len(b) - pos
        if length < head or pos + length > len(b):
            raise ValueError("JP2 box length out of range")
        if kind == b"jp2c":
            return b[pos + head : pos + length]
        pos += length
    raise ValueError("JP2 file without a contiguous codestream box")


def unsigned_codes(frame: np.ndarray, bits_stored: int, what: str) -> np.ndarray:
    """A frame as the unsigned codes JPEG and JPEG-LS encoders take: C-contiguous, native order,
    uint8 up to 8 bits and uint16 above; signed samples as their Bits Stored two's complement
    (readers sign-extend from Bits Stored). Values outside Bits Stored raise ValueError."""
    frame = np.ascontiguousarray(frame)
    if frame.dtype.itemsize > 2:
        raise ValueError(f"{what} holds at most 16 bits per sample")
    check_range(frame, bits_stored, what)
    if frame.dtype.kind == "i" and bits_stored > 8 * frame.dtype.itemsize:
        frame = frame.astype(np.int16)  # the two's complement at Bits Stored needs the wider container
    frame = frame.astype(frame.dtype.newbyteorder("="), copy=False)
    if frame.dtype.kind == "i":
        frame = frame.view(f"u{frame.dtype.itemsize}")
        if bits_stored < 8 * frame.dtype.itemsize:
            frame = frame & ((1 << bits_stored) - 1)
    return np.ascontiguousarray(frame, dtype=np.uint8 if bits_stored <= 8 else np.uint16)


def decoder(transfer_syntax: str):
    """The decode function for a transfer syntax (raises NoDecoderError)."""
    cap = CAPABILITY.get(transfer_syntax)
    if cap is None:
        raise NoDecoderError(f"no decoder for transfer syntax {transfer_syntax}")
    attr = f"{cap}_decode"
    try:
        return getattr(_backends.resolve(cap)[1], attr)
    except BackendError:
        raise NoDecoderError(
            f"decoding {transfer_syntax} needs a codec: pip install {INSTALL.get(cap, 'imagecodecs')}"
        ) from None


def _check_complete(data, ts: str) -> None:
    """A JPEG, JPEG-LS or JPEG 2000 codestream must end with its end marker (FFD9), padding aside.

    Decoders fill what a truncated stream lacks with grey and report
    success (libjpeg warns, CharLS and OpenJPEG may say nothing): refuse such
    frames instead of returning plausible pixels. FFD9 cannot occur inside
    the entropy-coded data of any of these codestreams (byte stuffing), so its
    presence near the end is a safe test.
    """
    head = bytes(data[:12])
    if head[4:8] == b"jP  ":  # a JP2 file: boxes may follow the codestream; the decoder checks it
        return
    tail = bytes(data[-4096:]).rstrip(b"\0")[-32:]
    if b"\xff\xd9" not in tail:
        raise InvalidDicomError(f"truncated {ts} codestream: no end-of-image marker (FFD9) at its end")


@functools.cache
def _takes_out(fn) -> bool:
    """Whether a decoder can write into the caller's array (the native ones can: they take ``out``)."""
    try:
        return "out" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def decode_frame(frames, data, out: np.ndarray, as_rgb: bool = True) -> None:
    """Decode one frame's codestream into ``out`` (frame shape and type), applying the DICOM rules.

    ``as_rgb=False`` leaves a JPEG YCbCr frame in YCbCr (the colour space it was stored in).
    """
    ts = frames.transfer_syntax
    fn = decoder(ts)
    shape = out.shape
    if CAPABILITY[ts] == "deflate_image":
        raw = fn(data, out.nbytes)
        out.reshape(-1).view(np.uint8)[:] = np.frombuffer(raw, dtype=np.uint8)
    else:
        _check_complete(data, ts)
        try:
            if CAPABILITY[ts] == "jpeg":
                arr = np.asarray(fn(data, shape=shape, out=out, photometric=frames.photometric, as_rgb=as_rgb))
            elif CAPABILITY[ts] in ("jpegls", "htj2k") and _takes_out(fn):
                arr = np.asarray(fn(data, shape=shape, out=out))
            elif CAPABILITY[ts] in ("jpeg2000", "htj2k", "jpegls"):
                arr = np.asarray(fn(data, shape=shape))
            else:
                arr = np.asarray(fn(data))
        except FastDicomError:
            raise
        except Exception as exc:  # noqa: BLE001 - a library's error becomes ours
            raise InvalidDicomError(f"frame does not decode as {ts}: {exc}") from None
        if arr.ndim == 3 and arr.shape[-1] == 1 and len(shape) == 2:
            arr = arr[..., 0]
        if arr.shape != shape:
            raise InvalidDicomError(f"decoded frame has shape {arr.shape}, the data set says {shape}")
        if arr is out:
            pass  # decoded in place
        elif arr.dtype.itemsize == out.dtype.itemsize and arr.dtype.kind in "iu":
            out[...] = arr.view(out.dtype)
        elif arr.dtype.itemsize > out.dtype.itemsize and arr.size and arr.dtype.kind in "iu" and out.dtype.kind in "iu":
            info = np.iinfo(out.dtype)
            if int(arr.max()) > info.max or int(arr.min()) < info.min:
                raise InvalidDicomError(
                    f"the {ts} codestream holds samples that do not fit Bits Allocated {8 * out.dtype.itemsize}"
                )
            out[...] = arr.astype(out.dtype)
        else:
            out[...] = arr.astype(out.dtype, copy=False)
    bs, ba = frames.bits_stored, frames.bits_allocated
    if frames.pixel_representation == 1 and bs < ba and out.dtype.kind == "i":
        shift = ba - bs
        out <<= shift
        out >>= shift
