"""Negotiation as a function, the dispatcher's routing, and a server assembled from services."""

from __future__ import annotations

import threading

from fastdicom.net import Association, dimse, pdu
from fastdicom.net.dimse import DimseChannel, Status
from fastdicom.net.negotiation import AcceptPolicy, Limits, negotiate
from fastdicom.net.pdu import ContextResult, RejectResult, RejectSource, UserRejectReason
from fastdicom.net.server import AssociationServer
from fastdicom.services import Dispatcher, VerificationService
from fastdicom.services.base import Request, response
from fastdicom.services.verification import VERIFICATION

EXPLICIT = "1.2.840.10008.1.2.1"
CT = "1.2.840.10008.5.1.4.1.1.2"


def _rq(calling="SCU", called="FASTDICOM", contexts=None, **ui):
    contexts = contexts or [pdu.PresentationContext(1, VERIFICATION, ["1.2.3.4", EXPLICIT])]
    return pdu.AssociateRQ(called, calling, contexts, pdu.UserInfo(implementation_class_uid="1.2.3", **ui))


def test_negotiate_is_a_function_of_request_policy_and_supported():
    supported = Dispatcher([VerificationService()])
    ac = negotiate(
        _rq(
            contexts=[
                pdu.PresentationContext(1, VERIFICATION, ["1.2.3.4", EXPLICIT]),
                pdu.PresentationContext(3, CT, [EXPLICIT]),  # no storage service here
                pdu.PresentationContext(5, VERIFICATION, ["1.2.3.4"]),
            ],
            async_ops=(0, 0),
            roles=[pdu.RoleSelection(CT, True, True)],
        ),
        AcceptPolicy(limits=Limits(max_operations=5)),
        supported,
    )
    assert isinstance(ac, pdu.AssociateAC)
    assert [(c.id, c.result, c.transfer_syntaxes) for c in ac.contexts] == [
        (1, ContextResult.ACCEPTANCE, [EXPLICIT]),  # the first proposed syntax we take
        (3, ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED, [EXPLICIT]),
        (5, ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED, ["1.2.3.4"]),
    ]
    assert ac.user_info.async_ops == (5, 1)  # unlimited asked: our limit
    assert [(r.scu, r.scp) for r in ac.user_info.roles] == [(True, False)]
    refusals = [
        (
            _rq(calling="EVIL"),
            AcceptPolicy(allowed_aes=frozenset({"GOOD"})),
            UserRejectReason.CALLING_AE_TITLE_NOT_RECOGNIZED,
        ),
        (_rq(called="OTHER"), AcceptPolicy(strict_called_ae=True), UserRejectReason.CALLED_AE_TITLE_NOT_RECOGNIZED),
        (_rq(), AcceptPolicy(authenticate=lambda i, ae: True, require_identity=True), UserRejectReason.NO_REASON_GIVEN),
        (
            _rq(user_identity=pdu.UserIdentity(1, b"bob")),
            AcceptPolicy(authenticate=lambda i, ae: 1 / 0),  # a failing hook refuses
            UserRejectReason.NO_REASON_GIVEN,
        ),
    ]
    for rq, policy, reason in refusals:
        rj = negotiate(rq, policy, supported)
        assert rj == pdu.AssociateRJ(RejectResult.PERMANENT, RejectSource.SERVICE_USER, reason)
    rq = _rq()
    rq.application_context = "1.2.3"
    assert negotiate(rq, AcceptPolicy(), supported).reason == UserRejectReason.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED
    ok = negotiate(
        _rq(user_identity=pdu.UserIdentity(2, b"al", b"pw", True)),
        AcceptPolicy(authenticate=lambda i, ae: b"token"),
        supported,
    )
    assert ok.user_info.user_identity_response == b"token"


class _Echoes:
    """A service of our own: answers N-ACTION on the Verification SOP class, counting batches."""

    commands = frozenset({dimse.N_ACTION_RQ})

    def __init__(self):
        self.batches = []

    def transfer_syntaxes(self, abstract_syntax):
        return [EXPLICIT] if abstract_syntax == VERIFICATION else ()

    def sink(self, request):
        return None  # collected in memory

    def handle(self, requests: list[Request], respond):
        self.batches.append([(r.message_id, r.data) for r in requests])
        for r in requests:
            respond(r, response(r, 0x0000, ActionTypeID=7))

    def close(self):
        pass


def test_a_server_of_services_routes_by_command_and_answers_the_rest_unrecognized():
    echoes = _Echoes()
    closed = threading.Event()
    dispatcher = Dispatcher([VerificationService(), echoes])
    real_close = dispatcher.close
    dispatcher.close = lambda: (real_close(), closed.set())  # the server tells its handler it stopped
    with AssociationServer(dispatcher, AcceptPolicy(), port=0, host="127.0.0.1") as server:
        assoc = Association.request(
            "127.0.0.1",
            server.port,
            calling_ae="SCU",
            called_ae="ANY",
            contexts=[pdu.PresentationContext(1, VERIFICATION, [EXPLICIT])],
            network_timeout=10,
        )
        ch = DimseChannel(assoc)
        ch.send_message(1, {"CommandField": dimse.C_ECHO_RQ, "MessageID": 1, "AffectedSOPClassUID": VERIFICATION})
        assert ch.receive_message().command["Status"] == 0
        ch.send_message(
            1, {"CommandField": dimse.N_ACTION_RQ, "MessageID": 2, "RequestedSOPClassUID": VERIFICATION}, b"ab"
        )
        rsp = ch.receive_message().command
        assert (
            rsp["CommandField"] == dimse.N_ACTION_RSP
            and rsp["ActionTypeID"] == 7
            and rsp["MessageIDBeingRespondedTo"] == 2
        )
        ch.send_message(
            1, {"CommandField": dimse.C_FIND_RQ, "MessageID": 3, "AffectedSOPClassUID": VERIFICATION}, b"xy"
        )
        rsp = ch.receive_message().command
        assert rsp["CommandField"] == dimse.C_FIND_RSP and rsp["Status"] == Status.UNRECOGNIZED_OPERATION
        ch.release()
        assert server.stats["associations"] == 1
    assert echoes.batches == [[(2, b"ab")]] and closed.is_set()
