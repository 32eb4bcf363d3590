"""The server configuration: one TOML file for ``fastdicom serve`` (the local AE, known peers, limits, archive).

::

    [local]
    ae_title = "FASTDICOM"
    port = 11112
    host = ""
    archive = "/srv/archive"
    allow_any = false                 # with a file: only the peers below may associate
    # anyone = ["store", "query"]     # what an unnamed peer may do when allow_any = true

    [limits]
    max_associations = 32
    match_limit = 10000               # C-FIND matches; more: refused with 0xA700, the limit in Error Comment
    max_uids = 100000                 # UIDs in one key (List of UID Matching); more: refused with 0xA700
    max_identifier_bytes = 16777216   # a C-FIND/C-MOVE/C-GET identifier; more: refused with 0xA700
    pending_interval = 1.0            # seconds between C-MOVE/C-GET pending responses
    move_associations = 4             # associations per C-MOVE towards its destination

    [peers.MODALITY]                  # a calling / called AE title
    host = "10.0.0.2"
    port = 104                        # with host: may be a C-MOVE destination, and gets commitment reports
    may = ["store", "query", "retrieve", "commit", "destination"]   # the default: all of them

The policy, stated once (the reliability tests check it):

* **No file** (nor ``--peer`` / ``--allow`` flags): anyone may associate and store, query, retrieve and request
  storage commitment, as ``fastdicom serve`` always let anyone store. Nobody is a C-MOVE destination: moves
  are refused with 0xA801 (no address is known).
* ``--peer AET@host:port`` without a file adds a known peer (a move destination) and keeps the door open to
  anyone else; ``--allow AET`` (as before the file existed) admits only the AE titles it names.
* **A file**: only the peers it names may associate (others: A-ASSOCIATE-RJ,
  calling AE title not recognized), each doing what its ``may`` lists; an operation it may not do is
  refused with 0x0124 (not authorized). ``allow_any = true`` lets unnamed peers in too, with the
  permissions ``anyone`` lists (by default: store, query, retrieve, commit).
* A C-MOVE destination must be a named peer with ``host``, ``port`` and ``destination`` among its rights.

Flags of ``fastdicom serve`` override the file (:func:`load`, then :meth:`ServerConfig.override`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import tomllib

from .errors import FastDicomError

#: What a peer may do.
RIGHTS = frozenset({"store", "query", "retrieve", "commit", "destination"})
#: What a peer may do when its ``may`` is not given (``destination`` needs an address too).
DEFAULT_RIGHTS = RIGHTS
#: What an unnamed peer may do (no file, or ``allow_any`` without ``anyone``).
ANYONE_RIGHTS = frozenset({"store", "query", "retrieve", "commit"})

_AE = re.compile(r"[\x20-\x5b\x5d-\x7e]{1,16}")  # PS3.5 AE: 16 characters, no backslash, no control


class ConfigError(FastDicomError):
    """A configuration file that cannot be used: named with the key at fault."""


@dataclass(frozen=True)
class Peer:
    """A known application entity: where it listens (if we ever call it) and what it may do."""

    ae_title: str
    host: str | None = None
    port: int | None = None
    may: frozenset[str] = DEFAULT_RIGHTS

    @property
    def address(self) -> str | None:
        """``AET@host:port`` when we know where it listens."""
        if self.host is None or self.port is None:
            return None
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.ae_title}@{host}:{self.port}"


@dataclass(frozen=True)
class ServerLimits:
    """The limits of the services (the association limits are ``net.negotiation.Limits``)."""

    max_associations: int = 32
    match_limit: int = 10_000
    max_uids: int = 100_000
    max_identifier_bytes: int = 16 << 20
    pending_interval: float = 1.0
    move_associations: int = 4
    network_timeout: float = 60.0


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``fastdicom serve`` needs to know (see the module for the policy)."""

    ae_title: str = "FASTDICOM"
    port: int = 11112
    host: str = ""
    archive: str | None = None
    #: None: no configuration (anyone may associate). A mapping: the named peers, by AE title.
    peers: Mapping[str, Peer] | None = None
    allow_any: bool = False
    anyone: frozenset[str] = ANYONE_RIGHTS
    limits: ServerLimits = field(default_factory=ServerLimits)
    #: PN matching without regard to case (the default); False: literal.
    pn_case_insensitive: bool = True
    #: Accept relational queries and retrievals when a requestor asks (SOP Class Extended Negotiation).
    relational: bool = True

    # -- the policy ------------------------------------------------------------------------------
    @property
    def allowed_aes(self) -> frozenset[str] | None:
        """The calling AE titles allowed to associate (None: anyone)."""
        if self.peers is None or self.allow_any:
            return None
        return frozenset(self.peers)

    def may(self, calling_ae: str, right: str) -> bool:
        """Whether the peer calling as ``calling_ae`` may do ``right`` (one of :data:`RIGHTS`)."""
        if right not in RIGHTS:
            raise ValueError(f"{right!r} is not one of {sorted(RIGHTS)}")
        ae = calling_ae.strip()
        if self.peers is not None and ae in self.peers:
            return right in self.peers[ae].may
        if self.peers is None or self.allow_any:
            return right in self.anyone and right != "destination"
        return False

    def destination(self, ae_title: str) -> Peer | None:
        """The peer a C-MOVE may send to under ``ae_title`` (None: unknown, or not a destination)."""
        peer = (self.peers or {}).get(ae_title.strip())
        if peer is None or peer.address is None or "destination" not in peer.may:
            return None
        return peer

    def address_of(self, ae_title: str) -> tuple[str, int] | None:
        """``(host, port)`` where the named peer listens (storage commitment reports on a new association)."""
        peer = (self.peers or {}).get(ae_title.strip())
        if peer is None or peer.host is None or peer.port is None:
            return None
        return peer.host, peer.port

    # -- flags over the file -----------------------------------------------------------------------
    def override(
        self,
        *,
        peers: Iterable[Peer] = (),
        allow: Iterable[str] = (),
        limits: Mapping[str, Any] | None = None,
        **values: Any,
    ) -> ServerConfig:
        """This configuration with flags applied: values that are not None replace the file's; ``peers``
        (``--peer``) and ``allow`` (``--allow``, AE titles with the default rights) are added to its peers."""
        changes = {k: v for k, v in values.items() if v is not None}
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise TypeError(f"unknown configuration values {sorted(unknown)}")
        added = {p.ae_title: p for p in peers}
        for ae in allow:
            added.setdefault(ae.strip(), Peer(ae.strip(), may=DEFAULT_RIGHTS - {"destination"}))
        if added:
            if self.peers is None and not allow:
                changes.setdefault("allow_any", True)  # --peer alone names a destination, it locks nobody out
            changes["peers"] = {**(self.peers or {}), **added}
        if limits:
            changes["limits"] = dataclasses.replace(self.limits, **{k: v for k, v in limits.items() if v is not None})
        return dataclasses.replace(self, **changes)


def parse_peer(text: str) -> Peer:
    """``AET@host:port`` (a ``--peer`` flag) -> a :class:`Peer` with every right."""
    from .services.base import parse_address  # (one address syntax for the whole project)

    ae, host, port = parse_address(text)
    return Peer(_ae(ae, "--peer"), host, port)


def _ae(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _AE.fullmatch(value.strip() or "x" * 17):
        raise ConfigError(f"{where}: {value!r} is not an AE title (1 to 16 characters, no backslash)")
    return value.strip()


def _get(table: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str, default: Any) -> Any:
    if key not in table:
        return default
    value = table[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float, (int, float))):
        name = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConfigError(f"{where}.{key}: expected {name}, got {value!r}")
    return value


def _rights(value: Any, where: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a list of {sorted(RIGHTS)}")
    bad = set(value) - RIGHTS
    if bad:
        raise ConfigError(f"{where}: unknown rights {sorted(bad)} (known: {sorted(RIGHTS)})")
    return frozenset(value)


def _check_keys(table: Mapping[str, Any], known: set[str], where: str) -> None:
    bad = set(table) - known
    if bad:
        raise ConfigError(f"{where}: unknown keys {sorted(bad)} (known: {sorted(known)})")


def from_dict(doc: Mapping[str, Any]) -> ServerConfig:
    """A :class:`ServerConfig` from a parsed TOML document; :class:`ConfigError` names what is wrong."""
    _check_keys(doc, {"local", "limits", "peers", "matching"}, "configuration")
    local = doc.get("local", {})
    if not isinstance(local, dict):
        raise ConfigError("[local] must be a table")
    _check_keys(local, {"ae_title", "port", "host", "archive", "allow_any", "anyone"}, "[local]")
    port = _get(local, "port", int, "local", 11112)
    if not 0 <= port <= 65535:
        raise ConfigError(f"local.port: {port} is not a TCP port")
    limits_t = doc.get("limits", {})
    if not isinstance(limits_t, dict):
        raise ConfigError("[limits] must be a table")
    defaults = ServerLimits()
    numbers: dict[str, Any] = {}
    for f in dataclasses.fields(ServerLimits):
        kind: type | tuple[type, ...] = (int, float) if isinstance(getattr(defaults, f.name), float) else int
        numbers[f.name] = _get(limits_t, f.name, kind, "limits", getattr(defaults, f.name))
        if numbers[f.name] <= 0:
            raise ConfigError(f"limits.{f.name}: must be positive")
    _check_keys(limits_t, set(numbers), "[limits]")
    matching = doc.get("matching", {})
    if not isinstance(matching, dict):
        raise ConfigError("[matching] must be a table")
    _check_keys(matching, {"pn_case_insensitive", "relational"}, "[matching]")
    peers: dict[str, Peer] = {}
    peers_t = doc.get("peers", {})
    if not isinstance(peers_t, dict):
        raise ConfigError("[peers] must be a table of [peers.AE_TITLE] tables")
    for name, t in peers_t.items():
        where = f"peers.{name}"
        ae = _ae(name, where)
        if not isinstance(t, dict):
            raise ConfigError(f"[{where}] must be a table")
        _check_keys(t, {"host", "port", "may"}, f"[{where}]")
        host = _get(t, "host", str, where, None)
        peer_port = _get(t, "port", int, where, None)
        if (host is None) != (peer_port is None):
            raise ConfigError(f"[{where}]: give both host and port, or neither")
        if peer_port is not None and not 1 <= peer_port <= 65535:
            raise ConfigError(f"{where}.port: {peer_port} is not a TCP port")
        may = _rights(t["may"], f"{where}.may") if "may" in t else DEFAULT_RIGHTS
        if "destination" in may and host is None and "may" in t:
            raise ConfigError(f"[{where}]: a move destination needs host and port")
        peers[ae] = Peer(ae, host, peer_port, may)
    return ServerConfig(
        ae_title=_ae(_get(local, "ae_title", str, "local", "FASTDICOM"), "local.ae_title"),
        port=port,
        host=_get(local, "host", str, "local", ""),
        archive=_get(local, "archive", str, "local", None),
        peers=peers,
        allow_any=_get(local, "allow_any", bool, "local", False),
        anyone=_rights(local["anyone"], "local.anyone") - {"destination"} if "anyone" in local else ANYONE_RIGHTS,
        limits=ServerLimits(**numbers),
        pn_case_insensitive=_get(matching, "pn_case_insensitive", bool, "matching", True),
        relational=_get(matching, "relational", bool, "matching", True),
    )


def load(path: str | None) -> ServerConfig:
    """The configuration in the TOML file at ``path``; None: no file (anyone may associate, see the module)."""
    if path is None:
        return ServerConfig()
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    try:
        return from_dict(doc)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


__all__ = ["ConfigError", "Peer", "ServerConfig", "ServerLimits", "from_dict", "load", "parse_peer"]
