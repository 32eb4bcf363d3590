"""TLS contexts for associations (PS3.15 Annex B: the BCP 195 RFC 8996 profile).

TLS 1.2 or later only (RFC 8996), forward-secret AEAD ciphers for TLS 1.2
(TLS 1.3 suites are all acceptable), optional mutual authentication.
"""

from __future__ import annotations

import ssl

#: TLS 1.2 suites of the BCP 195 profile: ECDHE/DHE key exchange, AES-GCM or ChaCha20-Poly1305.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL"


def _harden(ctx: ssl.SSLContext) -> ssl.SSLContext:
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION
    return ctx


def server_context(
    cert: str, key: str | None = None, *, ca: str | None = None, require_client_cert: bool = False
) -> ssl.SSLContext:
    """A context for a Storage SCP; ``require_client_cert`` turns on mutual authentication against ``ca``."""
    ctx = _harden(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    ctx.load_cert_chain(cert, key)
    if ca:
        ctx.load_verify_locations(ca)
    if require_client_cert:
        if not ca:
            raise ValueError("mutual authentication needs the CA that signs client certificates")
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_context(
    *, ca: str | None = None, cert: str | None = None, key: str | None = None, check_hostname: bool = True
) -> ssl.SSLContext:
    """A context for an SCU: verifies the peer against ``ca`` (the system store without it); ``cert`` for mutual auth."""
    ctx = _harden(ssl.create_default_context(cafile=ca))
    ctx.check_hostname = check_hostname
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx
