"""Character set handling for text value representations.

This module converts between the raw bytes of the text VRs (SH, LO, ST, LT,
UC, UT and PN) and Python strings, following the value of *Specific Character
Set* (0008,0005):

* PS3.3 C.12.1.1.2 lists the defined terms and their escape sequences
  (Tables C.12-2 to C.12-5).
* PS3.5 section 6.1 describes the default repertoire, the replacement of the
  default repertoire by a single character set and the ISO/IEC 2022 code
  extension technique, including the points at which the initial character
  set becomes active again.
* PS3.5 Annexes H, I, J and K give Japanese, Korean, Unicode/GB18030 and
  GB2312 examples.

The common case -- no Specific Character Set, a single-byte character set,
UTF-8, GB18030 or GBK, and no escape sequence in the value -- is handled by a
single :meth:`bytes.decode` / :meth:`str.encode` call.  Only values that use
ISO 2022 code extensions go through the slower escape sequence processing.

Model used for ISO 2022 code extensions
---------------------------------------
Every Python codec name that :func:`python_codecs` returns belongs to one of
the following groups:

* the default repertoire ``'iso8859'`` (ISO-IR 6 in G0, nothing designated
  to G1; bytes >= 0x80 are decoded as ISO 8859-1 for leniency),
* a single-byte G1 set (ISO 8859 parts, Thai), designated by ``ESC - F``,
* JIS X 0201 (``'shift_jis'``): romaji in G0 (``ESC ( J``) and katakana in G1
  (``ESC ) I``),
* a two-byte G1 set (KS X 1001 ``'euc_kr'``, GB 2312 ``'gb2312'``),
  designated by ``ESC $ ) F``,
* a two-byte G0 set (JIS X 0208 ``'iso2022_jp'`` and JIS X 0212
  ``'iso2022_jp_2'``), designated by ``ESC $ B`` and ``ESC $ ( D``,
* a stand-alone encoding that does not allow code extensions (UTF-8,
  GB18030, GBK and any other Python codec).

While decoding, the currently designated G0 and G1 sets are tracked; the bytes
0x00-0x7F are interpreted with the G0 set and 0x80-0xFF with the G1 set.  At
the delimiters listed in PS3.5 6.1.2.5.3 both revert to the sets of the first
value of Specific Character Set.
"""

from __future__ import annotations

import codecs as _codecs
import re
import warnings
from functools import lru_cache

__all__ = ["DEFAULT_CODEC", "decode_text", "encode_text", "python_codecs"]

#: Python codec used for the default character repertoire (ISO-IR 6).  Bytes
#: outside of ASCII are decoded as ISO 8859-1 instead of failing.
DEFAULT_CODEC = "iso8859"

_ESC = 0x1B
_ESC_BYTE = b"\x1b"

# Defined terms of Specific Character Set -> Python codec.
# PS3.3 Table C.12-2 (single-byte, no code extensions), C.12-3 (single-byte with
# code extensions), C.12-4 (multi-byte with code extensions) and C.12-5
# (multi-byte without code extensions).
_DEFINED_TERMS: dict[str, str] = {
    "": DEFAULT_CODEC,
    "ISO_IR 6": DEFAULT_CODEC,
    "ISO 2022 IR 6": DEFAULT_CODEC,
    "ISO_IR 100": "latin_1",
    "ISO 2022 IR 100": "latin_1",
    "ISO_IR 101": "iso8859_2",
    "ISO 2022 IR 101": "iso8859_2",
    "ISO_IR 109": "iso8859_3",
    "ISO 2022 IR 109": "iso8859_3",
    "ISO_IR 110": "iso8859_4",
    "ISO 2022 IR 110": "iso8859_4",
    "ISO_IR 144": "iso8859_5",
    "ISO 2022 IR 144": "iso8859_5",
    "ISO_IR 127": "iso8859_6",
    "ISO 2022 IR 127": "iso8859_6",
    "ISO_IR 126": "iso8859_7",
    "ISO 2022 IR 126": "iso8859_7",
    "ISO_IR 138": "iso8859_8",
    "ISO 2022 IR 138": "iso8859_8",
    "ISO_IR 148": "iso8859_9",
    "ISO 2022 IR 148": "iso8859_9",
    "ISO_IR 203": "iso8859_15",
    "ISO 2022 IR 203": "iso8859_15",
    # TIS 620-2533 is registered as a 96-character set (ESC - T), which is
    # what ISO 8859-11 encodes (TIS-620 plus NO-BREAK SPACE at 0xA0).
    "ISO_IR 166": "iso8859_11",
    "ISO 2022 IR 166": "iso8859_11",
    "ISO_IR 13": "shift_jis",
    "ISO 2022 IR 13": "shift_jis",
    "ISO 2022 IR 87": "iso2022_jp",
    "ISO 2022 IR 159": "iso2022_jp_2",
    "ISO 2022 IR 149": "euc_kr",
    "ISO 2022 IR 58": "gb2312",
    "ISO_IR 192": "utf_8",
    "GB18030": "gb18030",
    "GBK": "gbk",
}

# Values that are not defined terms but are accepted without a warning
# because they have been seen in the wild (and other toolkits accept them).
_TOLERATED_TERMS: dict[str, str] = {
    "ISO 2022 GBK": "gbk",
    "ISO 2022 58": "gb2312",
}

# Kinds of character sets in the ISO 2022 model.
_DEFAULT = "default"  # ISO-IR 6 in G0, nothing in G1
_G1_SB = "g1sb"  # single-byte G1 set (96 characters)
_G1_MB = "g1mb"  # two-byte G1 set (94x94 characters)
_KANA = "kana"  # JIS X 0201: romaji in G0, katakana in G1
_G0_MB = "g0mb"  # two-byte G0 set (94x94 characters)
_OPAQUE = "opaque"  # stand-alone encoding, no code extensions

# Escape sequences (without the leading ESC) of PS3.3 Tables C.12-3 and C.12-4.
_SEQ_ASCII = b"(B"  # ISO-IR 6, G0
_SEQ_ROMAJI = b"(J"  # ISO-IR 14 (JIS X 0201 romaji), G0
_SEQ_KATAKANA = b")I"  # ISO-IR 13 (JIS X 0201 katakana), G1

# Python codec -> (kind, designating escape sequence without ESC)
_ROLES_BY_NAME: dict[str, tuple[str, bytes]] = {
    "latin_1": (_G1_SB, b"-A"),
    "iso8859_2": (_G1_SB, b"-B"),
    "iso8859_3": (_G1_SB, b"-C"),
    "iso8859_4": (_G1_SB, b"-D"),
    "iso8859_5": (_G1_SB, b"-L"),
    "iso8859_6": (_G1_SB, b"-G"),
    "iso8859_7": (_G1_SB, b"-F"),
    "iso8859_8": (_G1_SB, b"-H"),
    "iso8859_9": (_G1_SB, b"-M"),
    "iso8859_15": (_G1_SB, b"-b"),
    "iso8859_11": (_G1_SB, b"-T"),
    "tis_620": (_G1_SB, b"-T"),
    "shift_jis": (_KANA, _SEQ_KATAKANA),
    "euc_kr": (_G1_MB, b"$)C"),
    "gb2312": (_G1_MB, b"$)A"),
    "iso2022_jp": (_G0_MB, b"$B"),
    "iso2022_jp_2": (_G0_MB, b"$(D"),
    "ascii": (_DEFAULT, _SEQ_ASCII),
}
# keyed by the canonical name Python reports, so that aliases work as well
_ROLES: dict[str, tuple[str, bytes]] = {_codecs.lookup(name).name: role for name, role in _ROLES_BY_NAME.items()}

# Escape sequence -> (kind, codec) for sequences not declared by the
# Specific Character Set (they are honoured, with a warning).
_KNOWN_ESCAPES: dict[bytes, tuple[str, str]] = {
    _SEQ_ASCII: (_DEFAULT, DEFAULT_CODEC),
    _SEQ_ROMAJI: (_DEFAULT, DEFAULT_CODEC),
}
for _name, (_kind, _seq) in _ROLES_BY_NAME.items():
    if _kind != _DEFAULT and _name != "tis_620":
        _KNOWN_ESCAPES[_seq] = (_kind, _name)
del _name, _kind, _seq

# PS3.5 6.1.2.5.3: the initial character set is active again after CR, LF,
# FF, TAB (and any other control character except ESC), after the value
# delimiter '\' and, for PN, after '^' and '='.
_CONTROLS = bytes(c for c in range(0x20) if c != _ESC)
_TEXT_DELIMS = _CONTROLS
_MULTI_DELIMS = _CONTROLS + b"\\"
_PN_DELIMS = _CONTROLS + b"\\^="
_DELIM_RE = {
    delims: re.compile(b"[" + re.escape(delims) + b"]") for delims in (_TEXT_DELIMS, _MULTI_DELIMS, _PN_DELIMS)
}
_DELIM_STR_RE = {
    delims: re.compile("[" + re.escape(delims.decode("ascii")) + "]")
    for delims in (_TEXT_DELIMS, _MULTI_DELIMS, _PN_DELIMS)
}
_MULTI_VALUED_VRS = frozenset(("SH", "LO", "UC"))
_HIGH_RUN_RE = re.compile(rb"[\x80-\xff]+|[\x00-\x7f]+")
_ASCII_RUN_RE = re.compile(r"[\x00-\x7f]+|[^\x00-\x7f]+")

_TERM_RE = re.compile(r"^ISO[\s_-]*(2022)?[\s_-]*IR[\s_-]*0*(\d+)$")


def _delimiters(vr: str) -> bytes:
    if vr == "PN":
        return _PN_DELIMS
    if vr in _MULTI_VALUED_VRS:
        return _MULTI_DELIMS
    return _TEXT_DELIMS


@lru_cache(maxsize=1024)
def _role(codec: str) -> tuple[str, bytes]:
    """Return ``(kind, escape sequence)`` for a Python codec name."""
    if codec == DEFAULT_CODEC:
        return _DEFAULT, _SEQ_ASCII
    try:
        name = _codecs.lookup(codec).name
    except LookupError:
        return _OPAQUE, b""
    return _ROLES.get(name, (_OPAQUE, b""))


# Codec names for which CPython's bytes.decode / str.encode skip the codec
# registry; for all others calling the codec functions directly is 2-4 times
# faster for short values.
_BUILTIN_FAST_NAMES = frozenset(
    ("utf_8", "utf-8", "utf8", "UTF8", "UTF-8", "latin_1", "latin-1", "latin1", "ascii", "us-ascii")
)
_MISSING = object()
_DECODERS: dict[str, object] = {}
_ENCODERS: dict[str, object] = {}


def _load_codec_functions(codec: str) -> None:
    """Fill `_DECODERS` and `_ENCODERS` for `codec` (None: use bytes.decode / str.encode)."""
    info = _codecs.lookup(codec)  # LookupError for unknown codecs
    decoder: object = None
    encoder: object = None
    if codec not in _BUILTIN_FAST_NAMES:
        if info.name == "iso8859-1":
            decoder, encoder = _codecs.latin_1_decode, _codecs.latin_1_encode
        elif info.name != "utf-8":
            decoder, encoder = info.decode, info.encode
    if len(_DECODERS) < 1024:
        _DECODERS[codec] = decoder
        _ENCODERS[codec] = encoder


def _decode(raw: bytes, codec: str) -> str:
    """``raw.decode(codec)``, faster."""
    decoder = _DECODERS.get(codec, _MISSING)
    if decoder is _MISSING:
        _load_codec_functions(codec)
        decoder = _DECODERS.get(codec)
    if decoder is None:
        return raw.decode(codec)
    return decoder(raw)[0]  # type: ignore[operator]


def _encode(value: str, codec: str) -> bytes:
    """``value.encode(codec)``, faster."""
    encoder = _ENCODERS.get(codec, _MISSING)
    if encoder is _MISSING:
        _load_codec_functions(codec)
        encoder = _ENCODERS.get(codec)
    if encoder is None:
        return value.encode(codec)
    return encoder(value)[0]  # type: ignore[operator]


for _codec in {*_DEFINED_TERMS.values(), *_TOLERATED_TERMS.values()}:
    _load_codec_functions(_codec)
del _codec


# --------------------------------------------------------------------------
# Specific Character Set -> Python codecs
# --------------------------------------------------------------------------


def _python_text_codec(name: str) -> str | None:
    """Return the canonical name of `name` if it is an ASCII compatible text codec."""
    probe = "AZaz09 ^=\\\r\n"
    try:
        info = _codecs.lookup(name)
        if probe.encode(info.name) != probe.encode("ascii"):
            return None
        if probe.encode("ascii").decode(info.name) != probe:
            return None
    except (LookupError, ValueError, TypeError):
        return None
    return info.name


def _convert_term(term: str, messages: list[str]) -> str:
    """Convert one value of Specific Character Set to a Python codec name."""
    stripped = term.strip()
    codec = _DEFINED_TERMS.get(stripped) or _TOLERATED_TERMS.get(stripped)
    if codec is not None:
        return codec

    upper = stripped.upper()
    match = _TERM_RE.match(upper)
    if match is not None:
        number = match.group(2)
        candidates = [f"ISO_IR {number}", f"ISO 2022 IR {number}"]
        if match.group(1):
            candidates.reverse()
        for candidate in candidates:
            if candidate in _DEFINED_TERMS:
                messages.append(f"Incorrect value for Specific Character Set '{term}' - assuming '{candidate}'")
                return _DEFINED_TERMS[candidate]
    elif upper in _DEFINED_TERMS or upper in _TOLERATED_TERMS:
        messages.append(f"Incorrect value for Specific Character Set '{term}' - assuming '{upper}'")
        return _DEFINED_TERMS.get(upper) or _TOLERATED_TERMS[upper]

    # not a DICOM term, but possibly already the name of a Python codec
    python_name = _python_text_codec(stripped) if match is None and stripped else None
    if python_name is not None:
        return python_name

    messages.append(f"Unknown value for Specific Character Set '{term}' - using the default repertoire")
    return DEFAULT_CODEC


@lru_cache(maxsize=256)
def _python_codecs_cached(terms: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    messages: list[str] = []
    if not terms:
        return (DEFAULT_CODEC,), ()

    result = [_convert_term(term, messages) for term in terms]
    if len(result) > 1:
        if _role(result[0])[0] == _OPAQUE:
            messages.append(
                f"Value '{terms[0]}' of Specific Character Set does not allow code extensions, "
                f"ignoring: {', '.join(terms[1:])}"
            )
            result = result[:1]
        else:
            kept = [result[0]]
            for term, codec in zip(terms[1:], result[1:]):
                if _role(codec)[0] == _OPAQUE:
                    messages.append(
                        f"Value '{term}' of Specific Character Set cannot be used as a code extension, ignoring it"
                    )
                else:
                    kept.append(codec)
            result = kept
    return tuple(result), tuple(messages)


_CLEAN_STR_RESULTS: dict[str, tuple[str, ...]] = {}
_DEFAULT_CODECS = (DEFAULT_CODEC,)


def python_codecs(charsets: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Map the value(s) of *Specific Character Set* to Python codec names.

    Parameters
    ----------
    charsets : str, list of str, tuple of str or None
        The value of (0008,0005) *Specific Character Set*: a single defined
        term, the values of a multi-valued element, or a raw backslash
        separated string.  ``None`` or empty means the default repertoire.

    Returns
    -------
    tuple of str
        One Python codec name per used value, starting with the initial
        character set (``'iso8859'`` for the default repertoire).

    Warns
    -----
    UserWarning
        If a value is misspelled (for example ``'ISO-IR 100'`` or
        ``'ISO_IR100'``; the corrected term is used), unknown (the default
        repertoire is used in its place) or a stand-alone character set
        (``'ISO_IR 192'``, ``'GB18030'``, ``'GBK'``) is combined with code
        extensions (the extensions, or the stand-alone value if it is not
        the first, are ignored).

    Notes
    -----
    Names of ASCII compatible Python text codecs (for example ``'utf-8'``)
    are accepted as well and returned as their canonical Python name.
    Results are cached.
    """
    if charsets is None:
        return _DEFAULT_CODECS
    if isinstance(charsets, str):
        cached = _CLEAN_STR_RESULTS.get(charsets)
        if cached is not None:
            return cached
        key: tuple[str, ...] = tuple(charsets.split("\\")) if charsets else ()
    elif not charsets:
        key = ()
    else:
        key = tuple(str(value) for value in charsets)
    result, messages = _python_codecs_cached(key)
    if messages:
        for message in messages:
            warnings.warn(message, UserWarning, stacklevel=2)
    elif isinstance(charsets, str) and len(_CLEAN_STR_RESULTS) < 1024:
        _CLEAN_STR_RESULTS[charsets] = result
    return result


# --------------------------------------------------------------------------
# ISO 2022 plans
# --------------------------------------------------------------------------


class _Plan:
    """Everything needed to decode/encode with one tuple of codecs."""

    __slots__ = ("opaque", "first", "init_g1", "g0_return", "escapes", "ext_sets", "char_cache")

    def __init__(self, codecs: tuple[str, ...]) -> None:
        first = codecs[0]
        kind, _ = _role(first)
        self.first = first
        self.opaque = kind in (_OPAQUE, _G0_MB)
        # codec used for bytes in the G1 area in the initial state
        self.init_g1 = first
        # escape sequence that re-designates the initial G0 set
        self.g0_return = _ESC_BYTE + (_SEQ_ROMAJI if kind == _KANA else _SEQ_ASCII)
        # escape sequence -> (kind, codec, declared)
        escapes: dict[bytes, tuple[str, str, bool]] = {
            seq: (seq_kind, codec, False) for seq, (seq_kind, codec) in _KNOWN_ESCAPES.items()
        }
        escapes[_SEQ_ASCII] = (_DEFAULT, DEFAULT_CODEC, True)
        # character sets usable for encoding non-ASCII characters:
        # (kind, codec, escape sequence including ESC)
        ext_sets: list[tuple[str, str, bytes]] = []
        for codec in codecs:
            codec_kind, seq = _role(codec)
            if codec_kind in (_OPAQUE, _DEFAULT):
                continue
            if codec_kind == _KANA:
                escapes[_SEQ_ROMAJI] = (_DEFAULT, DEFAULT_CODEC, True)
            escapes[seq] = (codec_kind, codec, True)
            ext_sets.append((codec_kind, codec, _ESC_BYTE + seq))
        self.escapes = escapes
        self.ext_sets = tuple(ext_sets)
        self.char_cache: dict[str, tuple[int, bytes]] = {}


@lru_cache(maxsize=256)
def _plan(codecs: tuple[str, ...]) -> _Plan:
    return _Plan(codecs)


# --------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------


def _decode_replace(raw: bytes, codec: str, message: str) -> str:
    warnings.warn(message, UserWarning, stacklevel=3)
    try:
        return raw.decode(codec, errors="replace")
    except LookupError:
        return raw.decode(DEFAULT_CODEC, errors="replace")


def _decode_g0_multibyte(payload: bytes, prefix: bytes, codec: str, g1: str) -> str:
    """Decode bytes while a two-byte set is designated to G0."""
    if max(payload) < 0x80:
        return (prefix + payload).decode(codec)
    if _role(g1)[0] == _DEFAULT:
        # no G1 set designated: bytes >= 0x80 are invalid here
        raise UnicodeDecodeError(codec, payload, 0, len(payload), "no G1 character set designated")
    parts = []
    for run in _HIGH_RUN_RE.findall(payload):
        if run[0] < 0x80:
            parts.append((prefix + run).decode(codec))
        else:
            parts.append(_decode(run, g1))
    return "".join(parts)


def _decode_iso2022(raw: bytes, codecs: tuple[str, ...], plan: _Plan, vr: str) -> str:
    """Decode a value that contains escape sequences."""
    delim_re = _DELIM_RE[_delimiters(vr)]
    first = plan.first
    init_g1 = plan.init_g1
    pieces = raw.split(_ESC_BYTE)
    out: list[str] = []
    head = pieces[0]
    if head:
        try:
            out.append(_decode(head, init_g1))
        except UnicodeDecodeError:
            out.append(_decode_replace(head, first, _undecodable_message(codecs)))

    g0: tuple[bytes, str] | None = None  # (escape, codec) of a two-byte G0 set
    g1 = init_g1
    undeclared: list[bytes] = []
    for piece in pieces[1:]:
        # ESC, intermediate bytes 0x20-0x2F, one final byte 0x30-0x7E
        n = len(piece)
        i = 0
        while i < n and 0x20 <= piece[i] <= 0x2F:
            i += 1
        entry = None
        if i < n and 0x30 <= piece[i] <= 0x7E:
            seq = piece[: i + 1]
            entry = plan.escapes.get(seq)
        if entry is None:
            out.append(
                _decode_replace(
                    _ESC_BYTE + piece,
                    first,
                    f"Unknown escape sequence in encoded text value - decoding with '{first}'",
                )
            )
            continue

        kind, codec, declared = entry
        if not declared:
            undeclared.append(seq)
        if kind == _DEFAULT:
            g0 = None
        elif kind == _G0_MB:
            g0 = (_ESC_BYTE + seq, codec)
        else:
            g1 = codec

        payload = piece[i + 1 :]
        if not payload:
            continue
        try:
            if g0 is not None:
                # no delimiters can be recognized while a two-byte set is in G0
                out.append(_decode_g0_multibyte(payload, g0[0], g0[1], g1))
            elif g1 != init_g1 and (match := delim_re.search(payload)) is not None:
                idx = match.start()
                out.append(_decode(payload[:idx], g1) + _decode(payload[idx:], init_g1))
                g1 = init_g1
            else:
                out.append(_decode(payload, g1))
        except UnicodeDecodeError:
            out.append(_decode_replace(_ESC_BYTE + piece, first, _undecodable_message(codecs)))

    if undeclared:
        names = ", ".join(repr("ESC " + " ".join(chr(b) for b in seq)) for seq in undeclared)
        warnings.warn(
            f"Text value uses escape sequence(s) {names} for character sets that are not declared "
            "in Specific Character Set",
            UserWarning,
            stacklevel=3,
        )
    return "".join(out)


def _undecodable_message(codecs: tuple[str, ...]) -> str:
    return f"Failed to decode text value with {', '.join(codecs)} - using replacement characters in the decoded string"


def decode_text(raw: bytes, codecs: tuple[str, ...], vr: str) -> str:
    """Decode the raw value of a text VR.

    Parameters
    ----------
    raw : bytes
        The encoded value as stored in the data set (all values of a
        multi-valued element including the ``\\`` delimiters; padding is not
        removed).
    codecs : tuple of str
        Python codec names as returned by :func:`python_codecs`; the first
        one is the initial character set.
    vr : str
        The value representation (``'SH'``, ``'LO'``, ``'ST'``, ``'LT'``,
        ``'UC'``, ``'UT'`` or ``'PN'``); it selects the delimiters after
        which the initial character set is active again.

    Returns
    -------
    str
        The decoded value.

    Warns
    -----
    UserWarning
        If (part of) the value cannot be decoded; that part is then decoded
        with the first codec using replacement characters.  Also if the
        value contains an unknown escape sequence, or one for a character
        set not declared in Specific Character Set (which is honoured).

    Notes
    -----
    Values without an ESC byte are decoded with a single call of
    :meth:`bytes.decode` using ``codecs[0]``.  Otherwise the value is split at
    the escape sequences (PS3.5 6.1.2.5) and each part is decoded with the
    character set the escape sequence designates; stand-alone character sets
    (UTF-8, GB18030, GBK) never use escape sequences.
    """
    if not codecs:
        codecs = (DEFAULT_CODEC,)
    first = codecs[0]
    if _ESC in raw:
        plan = _plan(tuple(codecs))
        if not plan.opaque:
            return _decode_iso2022(bytes(raw), tuple(codecs), plan, vr)
    # common case: one decode call
    try:
        decoder = _DECODERS[first]
        if decoder is None:
            return raw.decode(first)
        return decoder(raw)[0]  # type: ignore[operator]
    except KeyError:
        pass
    except UnicodeDecodeError:
        return _decode_replace(raw, first, _undecodable_message(codecs))
    try:
        return _decode(raw, first)
    except UnicodeDecodeError:
        return _decode_replace(raw, first, _undecodable_message(codecs))
    except LookupError:
        warnings.warn(f"Unknown codec '{first}' - using the default repertoire", UserWarning, stacklevel=2)
        return _decode(raw, DEFAULT_CODEC)


# --------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------

_NO_SET = -1  # no character set can encode the character
_LAST_RESORT = -2  # ISO 8859-1 byte under the default repertoire


def _classify(char: str, plan: _Plan) -> tuple[int, bytes]:
    """Return (index into plan.ext_sets, encoded bytes) for a non-ASCII character."""
    cached = plan.char_cache.get(char)
    if cached is not None:
        return cached
    result = (_NO_SET, b"")
    for index, (kind, codec, escape) in enumerate(plan.ext_sets):
        try:
            encoded = _encode(char, codec)
        except UnicodeEncodeError:
            continue
        if kind == _G1_SB:
            ok = len(encoded) == 1 and encoded[0] >= 0x80
        elif kind == _KANA:
            ok = len(encoded) == 1 and 0xA1 <= encoded[0] <= 0xDF
        elif kind == _G1_MB:
            ok = len(encoded) == 2 and encoded[0] >= 0xA1 and encoded[1] >= 0xA1
        else:  # _G0_MB: ESC seq, two bytes, return to ASCII
            n = len(escape)
            ok = encoded.startswith(escape) and len(encoded) == n + 5 and encoded[n + 2] == _ESC
            encoded = encoded[n : n + 2]
        if ok:
            result = (index, encoded)
            break
    else:
        if _role(plan.first)[0] == _DEFAULT and ord(char) < 0x100:
            result = (_LAST_RESORT, char.encode("latin_1"))
    if len(plan.char_cache) < 65536:
        plan.char_cache[char] = result
    return result


def _encode_iso2022(value: str, codecs: tuple[str, ...], plan: _Plan, vr: str) -> bytes:
    """Encode using ISO 2022 code extensions (PS3.5 6.1.2.5)."""
    delim_re = _DELIM_STR_RE[_delimiters(vr)]
    init_g1 = plan.init_g1
    g0_return = plan.g0_return
    ext_sets = plan.ext_sets
    out = bytearray()
    g0_mb: str | None = None  # codec of the two-byte set designated to G0
    g1 = init_g1  # G1 set in effect according to the standard
    g1_seen = init_g1  # G1 set last designated by an escape sequence
    failed = False
    for run in _ASCII_RUN_RE.findall(value):
        if run[0] < "\x80":
            # the initial G0 set is active for ASCII, delimiters included
            if g0_mb is not None:
                out += g0_return
                g0_mb = None
            out += run.encode("ascii")
            if delim_re.search(run) is not None:
                g1 = init_g1
            continue
        for char in run:
            index, encoded = _classify(char, plan)
            if index == _NO_SET:
                failed = True
                if g0_mb is not None:
                    out += g0_return
                    g0_mb = None
                out += b"?"
                continue
            if index == _LAST_RESORT:
                kind, codec, escape = _DEFAULT, init_g1, b""
            else:
                kind, codec, escape = ext_sets[index]
            if kind == _G0_MB:
                if g0_mb != codec:
                    out += escape
                    g0_mb = codec
            else:
                if g0_mb is not None:
                    out += g0_return
                    g0_mb = None
                if escape and (codec != g1 or codec != g1_seen):
                    # the initial set is designated explicitly as well if
                    # another one was in use before a delimiter, for the
                    # benefit of decoders that do not reset at delimiters
                    out += escape
                    g1 = g1_seen = codec
            out += encoded
    if g0_mb is not None:
        out += g0_return
    if failed:
        warnings.warn(
            f"Failed to encode text value with {', '.join(codecs)} - characters that cannot be "
            "encoded are replaced by '?'",
            UserWarning,
            stacklevel=3,
        )
    return bytes(out)


def encode_text(value: str, codecs: tuple[str, ...], vr: str) -> bytes:
    """Encode a text value for writing.

    Parameters
    ----------
    value : str
        The value (all values of a multi-valued element joined with ``\\``;
        for PN the components joined with ``^`` and ``=``).
    codecs : tuple of str
        Python codec names as returned by :func:`python_codecs`; the first
        one is the initial character set.
    vr : str
        The value representation; it selects the delimiters before which
        the initial character set is made active again.

    Returns
    -------
    bytes
        The encoded value, without padding.

    Warns
    -----
    UserWarning
        If some characters cannot be encoded with any of the character sets;
        they are replaced by ``?``.

    Notes
    -----
    If the whole value can be encoded with the initial character set, a
    single :meth:`str.encode` call is used.  Otherwise, with code extensions,
    each character is encoded with the first character set in `codecs` able
    to encode it, preceded by the escape sequence designating that set when
    needed (PS3.5 Annexes H, I and K).  A two-byte set designated to G0 (JIS
    X 0208/0212) is replaced by the initial G0 set before any ASCII
    character (so before every delimiter) and at the end of the value.
    """
    if not value:
        return b""
    if not codecs:
        codecs = (DEFAULT_CODEC,)
    first = codecs[0]
    kind = _role(first)[0]
    if kind == _OPAQUE or kind == _G0_MB:
        try:
            return _encode(value, first)
        except UnicodeEncodeError:
            warnings.warn(
                f"Failed to encode text value with '{first}' - using replacement characters",
                UserWarning,
                stacklevel=2,
            )
            return value.encode(first, errors="replace")
        except LookupError:
            warnings.warn(f"Unknown codec '{first}' - using the default repertoire", UserWarning, stacklevel=2)
            return encode_text(value, (DEFAULT_CODEC,), vr)

    if value.isascii():
        return value.encode("ascii")
    if kind == _G1_SB or kind == _G1_MB or (kind == _DEFAULT and len(codecs) == 1):
        try:
            return _encode(value, first)
        except UnicodeEncodeError:
            pass
    return _encode_iso2022(value, tuple(codecs), _plan(tuple(codecs)), vr)
