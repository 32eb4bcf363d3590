"""The Verification service (PS3.4 Annex A), both roles: C-ECHO answered, and :func:`echo`."""

from __future__ import annotations

import ssl
from collections.abc import Collection, Sequence

from ..dictionary import uid as _uid
from ..net import dimse, pdu
from ..net.association import Association, NetworkError
from ..net.dimse import DimseChannel, Status
from .base import ALL_TRANSFER_SYNTAXES, Drain, Request, RequestSink, Respond, parse_address, response, sop_class

VERIFICATION = sop_class("Verification")
#: What an echo proposes: the two little endian syntaxes every peer takes.
ECHO_SYNTAXES = [_uid.ExplicitVRLittleEndian, _uid.ImplicitVRLittleEndian]


class VerificationService:
    """The Verification SCP: every C-ECHO-RQ is answered with success."""

    commands = frozenset({dimse.C_ECHO_RQ})

    def transfer_syntaxes(self, abstract_syntax: str) -> Collection[str]:
        return ALL_TRANSFER_SYNTAXES if abstract_syntax == VERIFICATION else ()

    def sink(self, request: Request) -> RequestSink | None:
        return Drain()  # a C-ECHO carries no data set: one sent anyway is dropped

    def handle(self, requests: Sequence[Request], respond: Respond) -> None:
        for r in requests:
            command = response(r, Status.SUCCESS)
            command.setdefault("AffectedSOPClassUID", VERIFICATION)
            respond(r, command)

    def close(self) -> None:
        pass


def echo(
    address: str,
    *,
    calling_ae: str = "FASTDICOM",
    timeout: float = 30.0,
    tls: ssl.SSLContext | None = None,
    user_identity: pdu.UserIdentity | None = None,
) -> int:
    """C-ECHO the peer; return the status (0 is success). Raises NetworkError when no association is made."""
    called, host, port = parse_address(address)
    ctx = pdu.PresentationContext(1, VERIFICATION, list(ECHO_SYNTAXES))
    assoc = Association.request(
        host,
        port,
        calling_ae=calling_ae,
        called_ae=called,
        contexts=[ctx],
        network_timeout=timeout,
        tls=tls,
        user_identity=user_identity,
    )
    try:
        if 1 not in assoc.agreement.contexts:
            raise NetworkError("the peer refused the Verification SOP Class")
        channel = DimseChannel(assoc)
        channel.send_message(
            1,
            {
                "CommandField": dimse.C_ECHO_RQ,
                "MessageID": channel.next_message_id(),
                "AffectedSOPClassUID": VERIFICATION,
            },
        )
        status = int(channel.receive_message().command.get("Status", 0xFFFF))
        assoc.release()
        return status
    except BaseException:
        assoc.abort()
        raise
