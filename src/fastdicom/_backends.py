"""The one backend registry: capability -> ordered implementations, as data.

Each capability lists implementations in order of preference as
``(name, module, requirement)``. The first one available wins, once per
capability, lazily. A native module is available when it imports and its
``__version__`` equals the package's. Pure-Python implementations are named
``python`` or ``python-<package>`` (a codec may have several, one per
library: imagecodecs first, then pylibjpeg-openjpeg, pyjpegls, glymur); they are
available when they import. ``FASTDICOM_BACKEND=python`` restricts the
choice to them; ``FASTDICOM_REQUIRE_NATIVE=1`` turns a missing native module
into :class:`fastdicom.errors.BackendError`.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from ._version import __version__
from .errors import BackendError

# capability -> [(implementation name, module, attribute the module must have)]
REGISTRY: dict[str, list[tuple[str, str, str]]] = {
    "parse": [
        ("rust", "fastdicom._rust", "open_dataset"),
        ("python", "fastdicom.dataset._parse_py", "open_dataset"),
    ],
    # Codecs, each with the contracts of fastdicom.pixels.codecs: decode(data, frame), encode(frame, options).
    "rle": [
        ("rust", "fastdicom.pixels._codecs_rust", "rle_decode"),
        ("python", "fastdicom.pixels._rle_py", "rle_decode"),
    ],
    "rle_encode": [
        ("rust", "fastdicom.pixels._codecs_rust", "rle_encode"),
        ("python", "fastdicom.pixels._rle_py", "rle_encode"),
    ],
    "byteswap": [
        ("cython", "fastdicom._cy._kernels", "byteswap"),
        ("python", "fastdicom._kernels_py", "byteswap"),
    ],
    "pdata_send": [
        ("rust", "fastdicom._rust", "pdata_send"),
        ("python", "fastdicom.net._send_py", "pdata_send"),
    ],
    "pdata_sendfile": [
        ("rust", "fastdicom._rust", "pdata_sendfile"),
        ("python", "fastdicom.net._send_py", "pdata_sendfile"),
    ],
    "xxh3": [
        ("rust", "fastdicom._rust", "Xxh3"),
        ("python", "xxhash", "xxh3_128"),
    ],
    "pdata_recv": [
        ("rust", "fastdicom._rust", "pdata_recv"),
        ("python", "fastdicom.net._recv_py", "pdata_recv"),
    ],
    # A Storage SCP's staged files: created with their header, then flushed and closed in batches.
    "staging": [
        ("rust", "fastdicom._rust", "sync_close"),
        ("python", "fastdicom.archive._files_py", "sync_close"),
    ],
    "jpeg": [
        ("rust", "fastdicom.pixels._codecs_rust", "jpeg_decode"),
        ("python", "fastdicom.pixels._codecs_imagecodecs", "jpeg_decode"),
    ],
    "jpeg_encode": [
        ("rust", "fastdicom.pixels._codecs_rust", "jpeg_encode"),
        ("python", "fastdicom.pixels._codecs_imagecodecs", "jpeg_encode"),
    ],
    "jpegls": [
        ("rust", "fastdicom.pixels._codecs_rust", "jpegls_decode"),
        ("python", "fastdicom.pixels._codecs_imagecodecs", "jpegls_decode"),
        ("python-pyjpegls", "fastdicom.pixels._codecs_pyjpegls", "jpegls_decode"),
    ],
    "jpegls_encode": [
        ("rust", "fastdicom.pixels._codecs_rust", "jpegls_encode"),
        # pyjpegls first: it codes at Bits Stored as natively; imagecodecs only at the container's precision
        ("python-pyjpegls", "fastdicom.pixels._codecs_pyjpegls", "jpegls_encode"),
        ("python", "fastdicom.pixels._codecs_imagecodecs", "jpegls_encode"),
    ],
    "jpeg2000": [
        ("rust", "fastdicom.pixels._codecs_rust", "jpeg2000_decode"),
        ("python", "fastdicom.pixels._codecs_imagecodecs", "jpeg2000_decode"),
        ("python-pylibjpeg", "fastdicom.pixels._codecs_pylibjpeg", "jpeg2000_decode"),
        ("python-glymur", "fastdicom.pixels._codecs_glymur", "jpeg2000_decode"),
    ],
    "jpeg2000_encode": [
        ("rust", "fastdicom.pixels._codecs_rust", "jpeg2000_encode"),
        ("python", "fastdicom.pixels._codecs_imagecodecs", "jpeg2000_encode"),
        ("python-pylibjpeg", "fastdicom.pixels._codecs_pylibjpeg", "jpeg2000_encode"),
    ],
    "htj2k": [
        ("cython", "fastdicom.pixels._codecs_openjph", "htj2k_decode"),
        ("rust", "fastdicom.pixels._codecs_rust", "htj2k_decode"),
        ("python", "fastdicom.pixels._codecs_imagecodecs", "htj2k_decode"),
        ("python-pylibjpeg", "fastdicom.pixels._codecs_pylibjpeg", "htj2k_decode"),
        ("python-glymur", "fastdicom.pixels._codecs_glymur", "htj2k_decode"),
    ],
    "htj2k_encode": [
        ("cython", "fastdicom.pixels._codecs_openjph", "htj2k_encode"),
        ("python", "fastdicom.pixels._codecs_imagecodecs", "htj2k_encode"),
    ],
    "deflate_image": [("python", "fastdicom.pixels._codecs_py", "deflate_image_decode")],
    "processing": [
        ("cython", "fastdicom._cy._kernels", "window_linear"),
        ("python", "fastdicom._kernels_py", "window_linear"),
    ],
}

_resolved: dict[str, tuple[str, ModuleType]] = {}
_missing: dict[str, dict[str, str]] = {}
_explicit: dict[tuple[str, str], tuple[str, ModuleType]] = {}


_forced: str | None = None


def refresh() -> None:
    """Re-read ``FASTDICOM_BACKEND`` and forget the choices made so far."""
    global _forced
    _forced = os.environ.get("FASTDICOM_BACKEND", "").strip().lower() or None
    _resolved.clear()
    _missing.clear()
    _explicit.clear()


def forced() -> str | None:
    """The backend forced by ``FASTDICOM_BACKEND`` (read at import; see :func:`refresh`)."""
    return _forced


def is_python(name: str) -> bool:
    """Whether an implementation name is a pure-Python twin (``python`` or ``python-<package>``)."""
    return name == "python" or name.startswith("python-")


def require_native() -> bool:
    return os.environ.get("FASTDICOM_REQUIRE_NATIVE", "").strip() not in ("", "0", "false", "no")


def _try(name: str, module: str, attr: str) -> tuple[ModuleType | None, str]:
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        return None, f"not importable: {exc}"
    if not is_python(name):
        version = getattr(mod, "__version__", None)
        if version != __version__:
            return None, f"stale build: version {version!r}, package {__version__!r} (reinstall with pip install .)"
    if not hasattr(mod, attr):
        return None, f"built without {attr!r}"
    return mod, ""


def resolve(capability: str, backend: str | None = None) -> tuple[str, ModuleType]:
    """Return ``(implementation name, module)`` for a capability.

    Parameters
    ----------
    capability : str
        A key of :data:`REGISTRY`.
    backend : str, optional
        Ask for one implementation by name (``"python"``, ``"rust"``...).
    """
    want = backend or forced()
    if backend is None:  # the default choice (FASTDICOM_BACKEND only changes with refresh(), which clears it)
        hit = _resolved.get(capability)
        if hit is not None:
            return hit
    else:
        hit = _explicit.get((capability, backend))
        if hit is not None:
            return hit
    candidates = REGISTRY[capability]
    if want is not None:
        # "python" asks for any pure-Python twin, in the registry's order; other names, for themselves.
        candidates = [c for c in candidates if c[0] == want or (want == "python" and is_python(c[0]))]
        if not candidates:
            if backend is None:  # forced by the environment: fall back to Python for this capability
                candidates = [c for c in REGISTRY[capability] if is_python(c[0])]
            else:
                raise BackendError(f"no {backend!r} implementation of {capability!r}")
    missing: dict[str, str] = {}
    for name, module, attr in candidates:
        mod, why = _try(name, module, attr)
        if mod is not None:
            if is_python(name) and want is None and require_native() and missing:
                raise BackendError(f"native backend for {capability!r} unavailable: {missing}")
            result = (name, mod)
            if backend is not None:
                _explicit[(capability, backend)] = result
            else:
                _resolved[capability] = result
                _missing[capability] = missing
            return result
        missing[name] = why
    if backend is None:
        _missing[capability] = missing
    raise BackendError(f"no implementation of {capability!r} is available: {missing}")


#: Capabilities that may have no implementation at all (a codec library not installed).
OPTIONAL = frozenset(
    ("jpeg", "jpeg_encode", "jpegls", "jpegls_encode", "jpeg2000", "jpeg2000_encode", "htj2k", "htj2k_encode")
)


#: Call sites an implementation cannot serve, as data: ``(capability, trait) -> implementation names``.
#: The Rust data plane reads and writes a socket's descriptor itself, past the encryption of a TLS
#: socket: there (trait ``"tls"``) the Python twins carry the data, through the ``ssl`` module.
UNSUITABLE: dict[tuple[str, str], frozenset[str]] = {
    (capability, "tls"): frozenset({"rust"}) for capability in ("pdata_send", "pdata_sendfile", "pdata_recv")
}


def resolve_for(capability: str, traits: tuple[str, ...] | frozenset[str] = ()) -> tuple[str, ModuleType]:
    """:func:`resolve` for a call site with ``traits``: the implementations :data:`UNSUITABLE` for one are passed
    over (that is a rule, not a missing backend: ``FASTDICOM_REQUIRE_NATIVE`` does not object)."""
    excluded: set[str] = set()
    for trait in traits:
        excluded |= UNSUITABLE.get((capability, trait), frozenset())
    if not excluded:
        return resolve(capability)
    why: dict[str, str] = {}
    for name, _module, _attr in REGISTRY[capability]:
        if name in excluded or (forced() == "python" and not is_python(name)):
            continue
        try:
            return resolve(capability, name)
        except BackendError as exc:
            why[name] = str(exc)
    raise BackendError(f"no implementation of {capability!r} serves {sorted(traits)}: {why}")


def backend_info() -> dict[str, str]:
    """``{capability: implementation name}`` for every capability ("missing" for an absent optional codec)."""
    out = {}
    for cap in REGISTRY:
        try:
            out[cap] = resolve(cap)[0]
        except BackendError:
            if cap not in OPTIONAL:
                raise
            out[cap] = "missing"
    return out


def missing_info() -> dict[str, dict[str, str]]:
    """For each capability, the preferred implementations that were unavailable and why."""
    backend_info()
    chosen = forced()
    if chosen:
        return {
            cap: {n: "skipped: FASTDICOM_BACKEND=" + chosen for n, _, _ in REGISTRY[cap] if not is_python(n)}
            for cap in REGISTRY
        }
    return {cap: dict(_missing.get(cap, {})) for cap in REGISTRY}


refresh()
