"""Association negotiation on the acceptor side: ``negotiate(rq, policy, supported) -> AC | RJ``.

:class:`AcceptPolicy` says who may associate (our AE title, calling AE
allow-list, User Identity) and within which :class:`Limits`; ``supported``
says what the services behind the server take (abstract syntax -> transfer
syntaxes, role selection). :func:`negotiate` is a pure function of the three:
the answer to one A-ASSOCIATE-RQ.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Protocol

from ..dataset.write import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from . import pdu
from .association import DEFAULT_MAX_PDU
from .pdu import (
    ContextResult,
    PresentationRejectReason,
    RejectResult,
    RejectSource,
    UserRejectReason,
)


@dataclass(frozen=True)
class Limits:
    """Every limit of a server, in one place."""

    #: Associations at once; more get a transient A-ASSOCIATE-RJ (local limit exceeded).
    max_associations: int = 32
    #: Our maximum length (the largest P-DATA-TF variable field we take).
    max_pdu: int = DEFAULT_MAX_PDU
    #: Longest wait for the peer on an established association.
    network_timeout: float = 60.0
    #: ARTIM: longest wait for an A-ASSOCIATE-RQ, or for the peer to close.
    artim_timeout: float = 30.0
    #: Operations a requestor may keep outstanding (asynchronous operations window; 0 asked: this many).
    max_operations: int = 64
    #: Largest data set collected in memory (where no service streams it to a sink).
    max_data: int = 64 << 20
    #: Connections that have not yet sent their A-ASSOCIATE-RQ (0: four times ``max_associations``). They hold
    #: no association slot; past this many, new connections are closed at once.
    max_pending_connections: int = 0
    #: Longest wait for the A-ASSOCIATE-RQ once a connection opens (TLS handshake included; at most
    #: ``artim_timeout``): an idle connection is closed after it.
    request_timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.max_pending_connections <= 0:
            object.__setattr__(self, "max_pending_connections", 4 * self.max_associations)

    @property
    def max_connections(self) -> int:
        """Open connections in all past which new ones are closed at once (pending ones, associations, and
        a margin for refused ones waiting for their peer to close)."""
        return self.max_associations + self.max_pending_connections + 16


@dataclass(frozen=True)
class AcceptPolicy:
    """Who may associate, and the limits they get."""

    ae_title: str = "FASTDICOM"
    #: Refuse associations calling another AE title (permanent, called AE title not recognized).
    strict_called_ae: bool = False
    #: Calling AE titles allowed in (None: any); others get a permanent rejection.
    allowed_aes: frozenset[str] | None = None
    #: ``authenticate(user_identity, calling_ae)`` for associations that carry User Identity negotiation:
    #: False (or None, or an exception) rejects, True or bytes accepts (the bytes are the server response,
    #: sent when the requestor asked for a positive response). None: identities are not checked.
    authenticate: Callable[[pdu.UserIdentity, str], bool | bytes | None] | None = None
    #: With ``authenticate``: refuse associations without User Identity negotiation.
    require_identity: bool = False
    limits: Limits = field(default_factory=Limits)


class Supported(Protocol):
    """What the services behind a server take."""

    def transfer_syntaxes(self, abstract_syntax: str) -> Collection[str]:
        """The transfer syntaxes accepted for ``abstract_syntax`` (empty: the abstract syntax is not supported)."""
        ...

    def requestor_roles(self, proposed: pdu.RoleSelection) -> pdu.RoleSelection:
        """The answer to a role selection item (both bits describe the requestor)."""
        ...

    # Optional: ``extended_negotiation(sop_class_uid, info) -> bytes | None``, the answer to a SOP Class
    # Extended Negotiation sub-item (None: not answered, so nothing extended is agreed).


def over_limit() -> pdu.AssociateRJ:
    """The answer when the server holds all the associations it may: transient, local limit exceeded."""
    return pdu.AssociateRJ(
        RejectResult.TRANSIENT,
        RejectSource.SERVICE_PROVIDER_PRESENTATION,
        PresentationRejectReason.LOCAL_LIMIT_EXCEEDED,
    )


def _reject(reason: UserRejectReason) -> pdu.AssociateRJ:
    return pdu.AssociateRJ(RejectResult.PERMANENT, RejectSource.SERVICE_USER, reason)


def negotiate(rq: pdu.AssociateRQ, policy: AcceptPolicy, supported: Supported) -> pdu.AssociateAC | pdu.AssociateRJ:
    """The answer to an A-ASSOCIATE-RQ: each context accepted with the first proposed transfer syntax we take,
    or refused with its reason; or the association refused as a whole."""
    if rq.application_context != pdu.APPLICATION_CONTEXT:
        return _reject(UserRejectReason.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED)
    if policy.allowed_aes is not None and rq.calling_ae.strip() not in policy.allowed_aes:
        return _reject(UserRejectReason.CALLING_AE_TITLE_NOT_RECOGNIZED)
    if policy.strict_called_ae and rq.called_ae.strip() != policy.ae_title:
        return _reject(UserRejectReason.CALLED_AE_TITLE_NOT_RECOGNIZED)
    identity_response = None
    identity = rq.user_info.user_identity
    if policy.authenticate is not None:
        if identity is None:
            if policy.require_identity:
                return _reject(UserRejectReason.NO_REASON_GIVEN)
        else:
            try:
                verdict = policy.authenticate(identity, rq.calling_ae)
            except Exception:  # noqa: BLE001 - a failing hook refuses, never crashes the server
                verdict = False
            if verdict is False or verdict is None:
                return _reject(UserRejectReason.NO_REASON_GIVEN)
            if identity.positive_response_requested:
                identity_response = bytes(verdict) if isinstance(verdict, (bytes, bytearray)) else b""
    answers = []
    for pc in rq.contexts:
        ans = pdu.PresentationContext(pc.id, pc.abstract_syntax)
        accepted = supported.transfer_syntaxes(pc.abstract_syntax or "")
        ts = next((t for t in pc.transfer_syntaxes if t in accepted), None)
        if not accepted:
            ans.result, ans.transfer_syntaxes = ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED, pc.transfer_syntaxes[:1]
        elif ts is None:
            ans.result, ans.transfer_syntaxes = ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED, pc.transfer_syntaxes[:1]
        else:
            ans.result, ans.transfer_syntaxes = ContextResult.ACCEPTANCE, [ts]
        answers.append(ans)
    ui = pdu.UserInfo(
        max_length=policy.limits.max_pdu,
        implementation_class_uid=IMPLEMENTATION_CLASS_UID,
        implementation_version_name=IMPLEMENTATION_VERSION_NAME,
    )
    if rq.user_info.async_ops is not None:
        invoked, _performed = rq.user_info.async_ops
        most = policy.limits.max_operations
        # We perform one operation at a time but let the requestor keep several outstanding.
        ui.async_ops = (min(invoked, most) if invoked else most, 1)
    ui.user_identity_response = identity_response
    ui.roles = [supported.requestor_roles(r) for r in rq.user_info.roles]
    # SOP Class Extended Negotiation (PS3.7 D.3.3.5): answered by services that know the class, else left out.
    extended = getattr(supported, "extended_negotiation", None)
    if extended is not None:
        for uid, info in rq.user_info.sop_class_extended.items():
            answer = extended(uid, info)
            if answer is not None:
                ui.sop_class_extended[uid] = answer
    return pdu.AssociateAC(rq.called_ae, rq.calling_ae, answers, ui)
