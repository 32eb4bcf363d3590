"""``fastdicom.transcode``: the same object in another transfer syntax.

Between the uncompressed syntaxes (implicit/explicit VR little endian,
explicit big endian, deflated) only the encoding changes. From a compressed
syntax to an uncompressed one the frames are decoded (every codec the
registry has) and the pixel module follows what was decoded: Photometric
Interpretation becomes what the decoder produced (RGB for JPEG YCbCr and
J2K RCT/ICT), Planar Configuration 0, the offset tables go. To RLE Lossless
the decoded frames are encoded by the RLE codec. Lossy history is kept:
Lossy Image Compression stays "01" (set when the source syntax is lossy,
with its method), as PS3.3 C.7.6.1.1.5 requires; pixels are never dropped or
altered beyond what the codecs do.

To JPEG 2000 the frames are encoded by OpenJPEG (the native build; the
imagecodecs twin for lossless): JPEG 2000 Lossless Only (``j2k``) is exact,
JPEG 2000 (``j2k-lossy``) is irreversible at ``ratio`` (default 10) and sets
Lossy Image Compression "01" with the achieved ratio and the method
ISO_15444_1. Three-sample frames must be RGB once decoded; they are stored
with the multi-component transform as YBR_RCT (lossless) or YBR_ICT (lossy).
Values outside Bits Stored cannot be kept and are refused.

To JPEG-LS the frames are encoded by CharLS: lossless (``jls``) is exact;
near-lossless (``jls-near``) lets each sample move by at most ``near``
(default 2) and sets the lossy attributes with the method ISO_14495_1.
Signed samples are stored as their Bits Stored two's complement, as DICOM
requires; the Photometric Interpretation stays what was decoded.

To JPEG the frames are encoded by libjpeg-turbo: JPEG Lossless SV1
(``jpeg-lossless``, process 14 with selection value 1) is exact for 2 to 16
bits, colour stored without a colour transform (RGB stays RGB); JPEG
Baseline (``jpeg``) takes 8-bit unsigned samples at ``quality`` (default 90),
stores colour as YCbCr with 4:2:2 subsampling (YBR_FULL_422) and sets the
lossy attributes with the method ISO_10918_1.

To HTJ2K the frames are encoded by OpenJPH (the Cython binding; the
imagecodecs twin otherwise): HTJ2K Lossless (``htj2k``) and HTJ2K Lossless
RPCL (``htj2k-rpcl``: RPCL progression, a TLM marker segment and enough
decomposition levels for a lowest resolution of at most 64x64, PS3.5 10.18)
are exact; HTJ2K (``htj2k-lossy``) is irreversible with the quantisation
step that brings the first frame closest to ``ratio`` (default 10), used
for every frame, and sets the lossy attributes with the achieved ratio and
the method ISO_15444_15. Colour is stored as for JPEG 2000 (YBR_RCT,
YBR_ICT); at most 16 bits per sample.
"""

from __future__ import annotations

import contextvars
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import _backends
from .dataset.dataset import Dataset
from .dataset.read import read
from .dataset.values import Encapsulated
from .dataset.write import to_bytes
from .dictionary import uid as _uid
from .dictionary._uids import UIDS
from .pixels.codecs import LOSSY, EncodeOptions, NoDecoderError, check_range

RLE_LOSSLESS = "1.2.840.10008.1.2.5"
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
J2K_LOSSY = "1.2.840.10008.1.2.4.91"
JLS_LOSSLESS = "1.2.840.10008.1.2.4.80"
JLS_NEAR = "1.2.840.10008.1.2.4.81"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_SV1 = "1.2.840.10008.1.2.4.70"
HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"
HTJ2K_RPCL = "1.2.840.10008.1.2.4.202"
HTJ2K_LOSSY = "1.2.840.10008.1.2.4.203"
#: Short names accepted for the target syntax (besides UIDs and PS3.6 keywords).
ALIASES = {
    "implicit": _uid.ImplicitVRLittleEndian,
    "explicit": _uid.ExplicitVRLittleEndian,
    "big": _uid.ExplicitVRBigEndian,
    "deflated": _uid.DeflatedExplicitVRLittleEndian,
    "rle": RLE_LOSSLESS,
    "j2k": J2K_LOSSLESS,
    "jpeg2000": J2K_LOSSLESS,
    "j2k-lossless": J2K_LOSSLESS,
    "j2k-lossy": J2K_LOSSY,
    "jls": JLS_LOSSLESS,
    "jpegls": JLS_LOSSLESS,
    "jls-near": JLS_NEAR,
    "jpeg": JPEG_BASELINE,
    "jpeg-baseline": JPEG_BASELINE,
    "jpeg-lossless": JPEG_SV1,
    "jpeg-sv1": JPEG_SV1,
    "htj2k": HTJ2K_LOSSLESS,
    "htj2k-lossless": HTJ2K_LOSSLESS,
    "htj2k-rpcl": HTJ2K_RPCL,
    "htj2k-lossy": HTJ2K_LOSSY,
}
#: Encapsulated syntaxes this module can encode to.
ENCODABLE = frozenset(
    (RLE_LOSSLESS, J2K_LOSSLESS, J2K_LOSSY, JLS_LOSSLESS, JLS_NEAR, JPEG_BASELINE, JPEG_SV1)
    + (HTJ2K_LOSSLESS, HTJ2K_RPCL, HTJ2K_LOSSY)
)
_METHOD = {
    "1.2.840.10008.1.2.4.50": "ISO_10918_1",
    "1.2.840.10008.1.2.4.51": "ISO_10918_1",
    "1.2.840.10008.1.2.4.81": "ISO_14495_1",
    "1.2.840.10008.1.2.4.91": "ISO_15444_1",
    "1.2.840.10008.1.2.4.203": "ISO_15444_15",
}


def syntax_uid(name: str) -> str:
    """A transfer syntax UID from a UID, a PS3.6 keyword (``ExplicitVRLittleEndian``) or a short alias."""
    if name in UIDS and UIDS[name][1] == "Transfer Syntax":
        return name
    low = name.strip().lower()
    if low in ALIASES:
        return ALIASES[low]
    for uid, entry in UIDS.items():
        if entry[1] == "Transfer Syntax" and entry[4].lower() == low:
            return uid
    raise ValueError(f"unknown transfer syntax {name!r}")


#: Threads per transcode() call for its frames (None: the cores), set by its ``threads`` argument.
_THREADS: contextvars.ContextVar[int | None] = contextvars.ContextVar("fastdicom_transcode_threads", default=None)


def _each_frame(fn, frames) -> list:
    """``fn`` over the frames, on every core when there are several (the native encoders release the GIL)."""
    workers = min(len(frames), _THREADS.get() or os.cpu_count() or 1)
    if workers <= 1:
        return [fn(f) for f in frames]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, frames))


def _j2k_frames(frames: np.ndarray, px, ratio: float) -> list[bytes]:
    encode = _backends.resolve("jpeg2000_encode")[1].jpeg2000_encode
    # the encoder refuses values outside Bits Stored
    options = EncodeOptions(px.bits_stored, lossless=not ratio, ratio=ratio)
    return _each_frame(lambda f: encode(f, options), frames)


def _htj2k_qstep(encode, frame: np.ndarray, bits_stored: int, ratio: float) -> float:
    """The quantisation step whose HTJ2K encoding of ``frame`` comes closest to ``ratio``: bisection on its log.

    The compressed size falls as the step grows; steps span 2**-(Bits Stored
    + 4) (about lossless) to 1 (the whole range in one step).
    """
    sizes: dict[float, float] = {}

    def achieved(log_step: float) -> float:
        if log_step not in sizes:
            options = EncodeOptions(bits_stored, lossless=False, qstep=2.0**log_step)
            sizes[log_step] = frame.nbytes / max(1, len(encode(frame, options)))
        return sizes[log_step]

    lo, hi = -(bits_stored + 4.0), 0.0
    if achieved(lo) >= ratio:
        return 2.0**lo
    if achieved(hi) <= ratio:
        return 2.0**hi
    for _ in range(10):
        mid = (lo + hi) / 2
        if achieved(mid) < ratio:
            lo = mid
        else:
            hi = mid
    best = min(sizes, key=lambda k: abs(np.log(sizes[k] / ratio)))
    return 2.0**best


def _values(new: Dataset, keyword: str) -> list:
    previous = new.get(keyword)
    return [] if previous is None else list(previous) if isinstance(previous, (list, tuple)) else [previous]


def _add_lossy(new: Dataset, achieved: float, method: str) -> None:
    """Lossy Image Compression "01", then the method and the achieved ratio appended to the history.

    The ratio's values pair with the method's (PS3.3 C.7.6.1.1.5): when an
    earlier step left a method without its ratio, no ratio is appended
    (it would pair with the wrong method).
    """
    new.LossyImageCompression = "01"
    methods, ratios = _values(new, "LossyImageCompressionMethod"), _values(new, "LossyImageCompressionRatio")
    if len(ratios) == len(methods):
        new.add_new("LossyImageCompressionRatio", "DS", [*ratios, f"{achieved:.6g}"[:16]])
    new.add_new("LossyImageCompressionMethod", "CS", [*methods, method])


def transcode(
    ds: Dataset,
    transfer_syntax: str,
    *,
    ratio: float = 10.0,
    near: int = 2,
    quality: int = 90,
    threads: int | None = None,
) -> Dataset:
    """A new Dataset holding ``ds`` in ``transfer_syntax`` (UID, keyword or alias).

    ``ratio``: the target compression ratio of lossy JPEG 2000 (``j2k-lossy``).
    ``near``: the largest error per sample of near-lossless JPEG-LS (``jls-near``).
    ``quality``: JPEG Baseline quality, 1 to 100 (``jpeg``).
    ``ratio`` also sets the target of lossy HTJ2K (``htj2k-lossy``).
    ``threads``: how many threads encode the frames (None: one per core; 1 when
    the caller already runs several transcodes at once).
    """
    token = _THREADS.set(threads)
    try:
        return _transcode(ds, transfer_syntax, ratio=ratio, near=near, quality=quality)
    finally:
        _THREADS.reset(token)


def _transcode(ds: Dataset, transfer_syntax: str, *, ratio: float, near: int, quality: int) -> Dataset:
    target = syntax_uid(transfer_syntax)
    source = ds.transfer_syntax or _uid.ExplicitVRLittleEndian
    if target == source:
        return ds
    px = ds.pixels
    src_enc = _uid.is_encapsulated(source)
    dst_enc = _uid.is_encapsulated(target)
    if px is None or (not src_enc and not dst_enc):
        return read(to_bytes(ds, transfer_syntax=target))
    if dst_enc and target not in ENCODABLE:
        raise NoDecoderError(
            f"encoding to {target} needs a codec this build does not have yet"
            " (RLE Lossless, JPEG Baseline, JPEG Lossless SV1, JPEG 2000, JPEG-LS and HTJ2K do)"
        )
    if 0x7FE00010 not in ds:  # Float or Double Float Pixel Data
        raise ValueError("only Pixel Data (7FE0,0010) can be encapsulated: Float Pixel Data keeps a native syntax")
    if px.bits_allocated == 1:
        raise NoDecoderError("transcoding 1-bit Pixel Data between encapsulated and native syntaxes is not supported")
    if target in LOSSY and px.photometric == "PALETTE COLOR":
        raise ValueError("lossy compression of PALETTE COLOR indices is not allowed (PS3.5 8.2.1)")
    frames = px.array()  # decoded: raises NoDecoderError naming what to install
    coded_as = None  # the Photometric Interpretation an encoder imposes
    photometric = px.decoded_photometric
    new = read(to_bytes(ds))  # our own copy to edit
    for tag in (0x7FE00001, 0x7FE00002):  # Extended Offset Table (and its lengths)
        if tag in new:
            del new[tag]
    del new[0x7FE00010]
    if frames.dtype.itemsize > 1 and not frames.dtype.isnative:
        frames = frames.astype(frames.dtype.newbyteorder("="))
    if source in LOSSY:  # the history first, so a lossy target's method and ratio pair after it
        new.LossyImageCompression = "01"
        if "LossyImageCompressionMethod" not in new and source in _METHOD:
            new.add_new("LossyImageCompressionMethod", "CS", _METHOD[source])
    if target == RLE_LOSSLESS:
        encode = _backends.resolve("rle_encode")[1].rle_encode
        options = EncodeOptions(px.bits_stored)
        encoded = [encode(f, options) for f in frames]
        new.add_new(0x7FE00010, "OB", Encapsulated(encoded))
    elif target in (J2K_LOSSLESS, J2K_LOSSY):
        if px.samples == 3 and photometric != "RGB":
            raise ValueError(f"JPEG 2000 encoding of {photometric} is not supported (RGB is)")
        lossy_ratio = ratio if target == J2K_LOSSY else 0.0
        if target == J2K_LOSSY and not ratio >= 1:
            raise ValueError("a lossy JPEG 2000 ratio must be at least 1")
        encoded = _j2k_frames(frames, px, lossy_ratio)
        new.add_new(0x7FE00010, "OB", Encapsulated(encoded))
        if px.samples == 3:
            photometric = "YBR_ICT" if lossy_ratio else "YBR_RCT"
        if lossy_ratio:
            _add_lossy(new, frames.nbytes / max(1, sum(len(e) for e in encoded)), "ISO_15444_1")
    elif target in (JLS_LOSSLESS, JLS_NEAR):
        if px.bits_stored > 16 or frames.dtype.itemsize > 2:
            raise ValueError("JPEG-LS holds at most 16 bits per sample")
        if target == JLS_NEAR and not 1 <= near <= 255:
            raise ValueError("near-lossless JPEG-LS needs 1 <= near <= 255")
        if target == JLS_NEAR and frames.dtype.kind == "i":
            # Coded as the Bits Stored two's complement, an error of +-near can wrap around the sign.
            raise ValueError("near-lossless JPEG-LS of signed pixels is not supported (lossless is)")
        step = near if target == JLS_NEAR else 0
        encode = _backends.resolve("jpegls_encode")[1].jpegls_encode
        options = EncodeOptions(px.bits_stored, lossless=not step, near=step)
        encoded = _each_frame(lambda f: encode(f, options), frames)
        new.add_new(0x7FE00010, "OB", Encapsulated(encoded))
        if step:
            _add_lossy(new, frames.nbytes / max(1, sum(len(e) for e in encoded)), "ISO_14495_1")
    elif target in (JPEG_BASELINE, JPEG_SV1):
        if px.samples == 3 and photometric != "RGB":
            raise ValueError(f"JPEG encoding of {photometric} is not supported (RGB is)")
        encode = _backends.resolve("jpeg_encode")[1].jpeg_encode
        if target == JPEG_BASELINE:
            if frames.dtype != np.uint8 or px.bits_stored != 8:
                raise ValueError("JPEG Baseline holds 8-bit unsigned samples (Bits Allocated and Stored 8)")
            if not 1 <= quality <= 100:
                raise ValueError("JPEG quality must lie between 1 and 100")
            options = EncodeOptions(8, lossless=False, quality=quality)
            encoded = _each_frame(lambda f: encode(f, options), frames)
            _add_lossy(new, frames.nbytes / max(1, sum(len(e) for e in encoded)), "ISO_10918_1")
            if px.samples == 3:
                coded_as = "YBR_FULL_422"
        else:
            if px.bits_stored > 16 or frames.dtype.itemsize > 2:
                raise ValueError("JPEG Lossless holds at most 16 bits per sample")
            check_range(frames, px.bits_stored, "JPEG Lossless")  # the encoder checks its precision, at least 2
            options = EncodeOptions(max(2, px.bits_stored))
            encoded = _each_frame(lambda f: encode(f, options), frames)
        new.add_new(0x7FE00010, "OB", Encapsulated(encoded))
    elif target in (HTJ2K_LOSSLESS, HTJ2K_RPCL, HTJ2K_LOSSY):
        if px.samples == 3 and photometric != "RGB":
            raise ValueError(f"HTJ2K encoding of {photometric} is not supported (RGB is)")
        if px.bits_stored > 16:
            raise ValueError("HTJ2K encoding holds at most 16 bits per sample here (OpenJPH 0.9)")
        if target == HTJ2K_LOSSY and not ratio >= 1:
            raise ValueError("a lossy HTJ2K ratio must be at least 1")
        bs = px.bits_stored  # every encoder refuses values outside Bits Stored
        encode = _backends.resolve("htj2k_encode")[1].htj2k_encode
        qstep = _htj2k_qstep(encode, frames[0], bs, ratio) if target == HTJ2K_LOSSY else 0.0
        options = EncodeOptions(bs, lossless=not qstep, qstep=qstep, rpcl=target == HTJ2K_RPCL)
        encoded = _each_frame(lambda f: encode(f, options), frames)
        new.add_new(0x7FE00010, "OB", Encapsulated(encoded))
        if px.samples == 3:
            photometric = "YBR_ICT" if qstep else "YBR_RCT"
        if qstep:
            _add_lossy(new, frames.nbytes / max(1, sum(len(e) for e in encoded)), "ISO_15444_15")
    else:
        vr = "OB" if px.bits_allocated <= 8 else "OW"
        # A bytes value is in its data set's byte order: `new` has the encapsulated source's, little
        # endian; the writer orders it for the target (OW in 16-bit words, PS3.5 8.2).
        new.add_new(0x7FE00010, vr, np.ascontiguousarray(frames).astype(frames.dtype.newbyteorder("<")).tobytes())
    if photometric == "YBR_FULL_422":  # the frames were decoded or upsampled to full resolution
        photometric = "YBR_FULL"
    new.PhotometricInterpretation = coded_as or photometric
    if px.samples > 1:
        new.PlanarConfiguration = 0
    meta = new.file_meta
    if meta is not None:
        meta[0x00020010].value = target
    else:
        new.__dict__["_transfer_syntax"] = target
    return read(to_bytes(new, transfer_syntax=target))
