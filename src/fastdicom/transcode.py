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

Every target is one :class:`Target` record of :data:`TARGETS`: its UID and
short names, the registry capability that encodes it, the checks its encoder
needs of the decoded frames, the :class:`~fastdicom.pixels.codecs.EncodeOptions`
it asks for, and the Photometric Interpretation colour frames get; its lossy
method comes from the syntax's entry in :data:`fastdicom.pixels.codecs.CODECS`.
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from .dataset.dataset import Dataset
from .dataset.read import read
from .dataset.values import Encapsulated
from .dataset.write import to_bytes
from .dictionary import uid as _uid
from .dictionary._uids import UIDS
from .pixels.codecs import CODECS, LOSSY, EncodeOptions, NoDecoderError, check_range, encoder


@dataclass(frozen=True)
class Params:
    """The caller's settings of one :func:`transcode` call that targets read."""

    ratio: float
    near: int
    quality: int


@dataclass(frozen=True)
class Source:
    """What a target's checks and options see: the source's frames, decoded."""

    bits_stored: int
    samples: int
    photometric: str  # as decoded (RGB for JPEG YCbCr, J2K RCT/ICT)
    frames: np.ndarray  # (frames, rows, columns[, samples]), native byte order


#: ``check(source, params)``: raises ValueError when the encoder cannot keep the frames.
Check = Callable[[Source, Params], None]
Encode = Callable[[np.ndarray, EncodeOptions], bytes]


def _lossless(src: Source, params: Params, encode: Encode) -> EncodeOptions:
    return EncodeOptions(src.bits_stored)


@dataclass(frozen=True)
class Target:
    """A transfer syntax :func:`transcode` writes, and how.

    Attributes
    ----------
    uid : UID
        The transfer syntax.
    aliases : tuple of str
        Short names accepted for it (besides the UID and its PS3.6 keyword).
    capability : str or None
        The registry capability that encodes its frames (``rle_encode``,
        ``jpeg2000_encode``, ...); None for a native syntax.
    checks : tuple of callables
        ``check(source, params)``, in order, before any frame is encoded.
    options : callable
        ``options(source, params, encode) -> EncodeOptions`` (``encode``, the
        chosen encoder, for a target that searches its parameters); Bits
        Stored, lossless, unless a target says otherwise.
    colour : str or None
        The Photometric Interpretation of three-sample frames once encoded
        (None: as decoded).
    """

    uid: _uid.UID
    aliases: tuple[str, ...]
    capability: str | None = None
    checks: tuple[Check, ...] = ()
    options: Callable[[Source, Params, Encode], EncodeOptions] = _lossless
    colour: str | None = None

    @property
    def method(self) -> str | None:
        """Lossy Image Compression Method of a lossy target, None for a lossless one (the syntax's, from
        :data:`~fastdicom.pixels.codecs.CODECS`)."""
        codec = CODECS.get(self.uid) if self.capability else None
        return codec.method if codec is not None else None


def _rgb_only(name: str) -> Check:
    def check(src: Source, params: Params) -> None:
        if src.samples == 3 and src.photometric != "RGB":
            raise ValueError(f"{name} encoding of {src.photometric} is not supported (RGB is)")

    return check


def _at_most_16_bits(message: str, *, container: bool = True) -> Check:
    def check(src: Source, params: Params) -> None:
        if src.bits_stored > 16 or (container and src.frames.dtype.itemsize > 2):
            raise ValueError(message)

    return check


def _ratio_at_least_1(name: str) -> Check:
    def check(src: Source, params: Params) -> None:
        if not params.ratio >= 1:
            raise ValueError(f"a lossy {name} ratio must be at least 1")

    return check


def _near_in_range(src: Source, params: Params) -> None:
    if not 1 <= params.near <= 255:
        raise ValueError("near-lossless JPEG-LS needs 1 <= near <= 255")


def _near_unsigned(src: Source, params: Params) -> None:
    if src.frames.dtype.kind == "i":
        # Coded as the Bits Stored two's complement, an error of +-near can wrap around the sign.
        raise ValueError("near-lossless JPEG-LS of signed pixels is not supported (lossless is)")


def _baseline_8_bit(src: Source, params: Params) -> None:
    if src.frames.dtype != np.uint8 or src.bits_stored != 8:
        raise ValueError("JPEG Baseline holds 8-bit unsigned samples (Bits Allocated and Stored 8)")
    if not 1 <= params.quality <= 100:
        raise ValueError("JPEG quality must lie between 1 and 100")


def _within_bits_stored(src: Source, params: Params) -> None:
    check_range(src.frames, src.bits_stored, "JPEG Lossless")  # the encoder checks its precision, at least 2


def _htj2k_qstep(encode: Encode, frame: np.ndarray, bits_stored: int, ratio: float) -> float:
    """The quantisation step whose HTJ2K encoding of ``frame`` comes closest to ``ratio``: bisection on its log.

    The compressed size falls as the step grows; steps span 2**-(Bits Stored
    + 4) (about lossless) to 1/4 of the range (the coarsest OpenJPH 0.9 takes
    safely: it aborts on some steps from 1/2 up).
    """
    sizes: dict[float, float] = {}

    def achieved(log_step: float) -> float:
        if log_step not in sizes:
            options = EncodeOptions(bits_stored, lossless=False, qstep=2.0**log_step)
            sizes[log_step] = frame.nbytes / max(1, len(encode(frame, options)))
        return sizes[log_step]

    lo, hi = -(bits_stored + 4.0), -2.0
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


_JLS_16 = _at_most_16_bits("JPEG-LS holds at most 16 bits per sample")
_HTJ2K = (
    _rgb_only("HTJ2K"),
    _at_most_16_bits("HTJ2K encoding holds at most 16 bits per sample here (OpenJPH 0.9)", container=False),
)

#: Every syntax transcode writes. The encapsulated ones are encoded frame by frame by their capability.
TARGETS: tuple[Target, ...] = (
    Target(_uid.ImplicitVRLittleEndian, ("implicit",)),
    Target(_uid.ExplicitVRLittleEndian, ("explicit",)),
    Target(_uid.ExplicitVRBigEndian, ("big",)),
    Target(_uid.DeflatedExplicitVRLittleEndian, ("deflated",)),
    Target(_uid.RLELossless, ("rle",), "rle_encode"),
    Target(
        _uid.JPEG2000Lossless,
        ("j2k", "jpeg2000", "j2k-lossless"),
        "jpeg2000_encode",
        (_rgb_only("JPEG 2000"),),
        _lossless,
        "YBR_RCT",
    ),
    Target(
        _uid.JPEG2000,
        ("j2k-lossy",),
        "jpeg2000_encode",
        (_rgb_only("JPEG 2000"), _ratio_at_least_1("JPEG 2000")),
        lambda src, p, _e: EncodeOptions(src.bits_stored, lossless=False, ratio=p.ratio),
        "YBR_ICT",
    ),
    Target(_uid.JPEGLSLossless, ("jls", "jpegls"), "jpegls_encode", (_JLS_16,), _lossless),
    Target(
        _uid.JPEGLSNearLossless,
        ("jls-near",),
        "jpegls_encode",
        (_JLS_16, _near_in_range, _near_unsigned),
        lambda src, p, _e: EncodeOptions(src.bits_stored, lossless=False, near=p.near),
    ),
    Target(
        _uid.JPEGBaseline8Bit,
        ("jpeg", "jpeg-baseline"),
        "jpeg_encode",
        (_rgb_only("JPEG"), _baseline_8_bit),
        lambda src, p, _e: EncodeOptions(8, lossless=False, quality=p.quality),
        "YBR_FULL_422",
    ),
    Target(
        _uid.JPEGLosslessSV1,
        ("jpeg-lossless", "jpeg-sv1"),
        "jpeg_encode",
        (_rgb_only("JPEG"), _at_most_16_bits("JPEG Lossless holds at most 16 bits per sample"), _within_bits_stored),
        lambda src, p, _e: EncodeOptions(max(2, src.bits_stored)),  # process 14 codes 2 bits at least
    ),
    Target(_uid.HTJ2KLossless, ("htj2k", "htj2k-lossless"), "htj2k_encode", _HTJ2K, _lossless, "YBR_RCT"),
    Target(
        _uid.HTJ2KLosslessRPCL,
        ("htj2k-rpcl",),
        "htj2k_encode",
        _HTJ2K,
        lambda src, p, _e: EncodeOptions(src.bits_stored, rpcl=True),
        "YBR_RCT",
    ),
    Target(
        _uid.HTJ2K,
        ("htj2k-lossy",),
        "htj2k_encode",
        (*_HTJ2K, _ratio_at_least_1("HTJ2K")),
        lambda src, p, encode: EncodeOptions(
            src.bits_stored,
            lossless=False,
            qstep=_htj2k_qstep(encode, src.frames[0], src.bits_stored, p.ratio),  # the first frame's, for every one
        ),
        "YBR_ICT",
    ),
)
_BY_UID = {t.uid: t for t in TARGETS}
#: Short names accepted for the target syntax (besides UIDs and PS3.6 keywords).
ALIASES = {alias: t.uid for t in TARGETS for alias in t.aliases}
#: Encapsulated syntaxes this module can encode to.
ENCODABLE = frozenset(t.uid for t in TARGETS if t.capability)


def syntax_uid(name: str) -> _uid.UID:
    """A transfer syntax UID from a UID, a PS3.6 keyword (``ExplicitVRLittleEndian``) or a short alias.

    A keyword spelled as PS3.6 spells it wins over an alias (``JPEG2000`` is JPEG 2000, the lossy
    syntax; the alias ``j2k``/``jpeg2000`` is the lossless one); otherwise aliases and keywords are
    matched without regard to case.
    """
    if name in UIDS and UIDS[name][1] == "Transfer Syntax":
        return _uid.UID(name)
    exact = _uid.TRANSFER_SYNTAXES.get(name.strip())
    if exact is not None:
        return exact
    low = name.strip().lower()
    if low in ALIASES:
        return ALIASES[low]
    for uid, entry in UIDS.items():
        if entry[1] == "Transfer Syntax" and entry[4].lower() == low:
            return _uid.UID(uid)
    raise ValueError(f"unknown transfer syntax {name!r}")


def _each_frame(fn, frames, threads: int | None) -> list:
    """``fn`` over the frames, on ``threads`` threads (None: every core; the native encoders release the GIL)."""
    workers = min(len(frames), threads or os.cpu_count() or 1)
    if workers <= 1:
        return [fn(f) for f in frames]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, frames))


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
    uid = syntax_uid(transfer_syntax)
    source = ds.transfer_syntax or _uid.ExplicitVRLittleEndian
    if uid == source:
        return ds
    px = ds.pixels
    dst_enc = _uid.is_encapsulated(uid)
    if px is None or (not _uid.is_encapsulated(source) and not dst_enc):
        return read(to_bytes(ds, transfer_syntax=uid))
    target = _BY_UID.get(uid)
    if dst_enc and (target is None or target.capability is None):
        raise NoDecoderError(
            f"encoding to {uid} needs a codec this build does not have yet"
            " (RLE Lossless, JPEG Baseline, JPEG Lossless SV1, JPEG 2000, JPEG-LS and HTJ2K do)"
        )
    if 0x7FE00010 not in ds:  # Float or Double Float Pixel Data
        raise ValueError("only Pixel Data (7FE0,0010) can be encapsulated: Float Pixel Data keeps a native syntax")
    if px.bits_allocated == 1:
        raise NoDecoderError("transcoding 1-bit Pixel Data between encapsulated and native syntaxes is not supported")
    if uid in LOSSY and px.photometric == "PALETTE COLOR":
        raise ValueError("lossy compression of PALETTE COLOR indices is not allowed (PS3.5 8.2.1)")
    frames = px.array()  # decoded: raises NoDecoderError naming what to install
    decoded = px.decoded_photometric
    photometric = "YBR_FULL" if decoded == "YBR_FULL_422" else decoded  # decoded, or upsampled, to full resolution
    new = read(to_bytes(ds))  # our own copy to edit
    for tag in (0x7FE00001, 0x7FE00002):  # Extended Offset Table (and its lengths)
        if tag in new:
            del new[tag]
    del new[0x7FE00010]
    if frames.dtype.itemsize > 1 and not frames.dtype.isnative:
        frames = frames.astype(frames.dtype.newbyteorder("="))
    if source in LOSSY:  # the history first, so a lossy target's method and ratio pair after it
        new.LossyImageCompression = "01"
        method = CODECS[source].method
        if "LossyImageCompressionMethod" not in new and method:
            new.add_new("LossyImageCompressionMethod", "CS", method)
    if target is not None and target.capability is not None:
        src = Source(px.bits_stored, px.samples, decoded, frames)
        params = Params(ratio, near, quality)
        for check in target.checks:
            check(src, params)
        encode = encoder(target.capability)
        options = target.options(src, params, encode)
        encoded = _each_frame(lambda f: encode(f, options), frames, threads)
        new.add_new(0x7FE00010, "OB", Encapsulated(encoded))
        if target.method:
            _add_lossy(new, frames.nbytes / max(1, sum(len(e) for e in encoded)), target.method)
        if px.samples == 3 and target.colour:
            photometric = target.colour  # what the encoder stores
    else:
        vr = "OB" if px.bits_allocated <= 8 else "OW"
        # A bytes value is in its data set's byte order: `new` has the encapsulated source's, little
        # endian; the writer orders it for the target (OW in 16-bit words, PS3.5 8.2).
        new.add_new(0x7FE00010, vr, np.ascontiguousarray(frames).astype(frames.dtype.newbyteorder("<")).tobytes())
    new.PhotometricInterpretation = photometric
    if px.samples > 1:
        new.PlanarConfiguration = 0
    meta = new.file_meta  # `new` was read from Part 10 bytes of our own: it has File Meta
    if meta is None:
        raise AssertionError("a data set read from to_bytes() has File Meta")
    meta[0x00020010].value = uid
    return read(to_bytes(new, transfer_syntax=uid))


class _CallableModule(types.ModuleType):
    """This module, callable as :func:`transcode`.

    ``fastdicom.transcode`` is imported on first use (it brings numpy and the
    codecs); whoever imports this module first makes the package's
    ``transcode`` attribute this module, so calling it must still transcode.
    """

    def __call__(self, ds: Dataset, transfer_syntax: str, **kwargs: Any) -> Dataset:
        return transcode(ds, transfer_syntax, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
