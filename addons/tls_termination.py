"""TLS between clients and the gateway, on every listener.

Replaces mitmproxy's ``TlsConfig`` (not loaded): the server context comes from
:class:`gateway.tls.certificates.CertificateSource` - the owner's certificate or the
self-signed one, TLS 1.2/1.3 with modern suites only, reloaded when the files change. The
connection guard has already refused unknown addresses in ``client_connected``, so a
refused client never sees a ServerHello. With TLS off, nothing answers a ClientHello and
the handshake fails.
"""

from __future__ import annotations

from mitmproxy import tls
from OpenSSL import SSL

from addons.base import fail_closed
from gateway.proxy.state import ProxyState
from gateway.tls.certificates import CertificateSource


class TlsTermination:
    def __init__(self, state: ProxyState, certificates: CertificateSource | None) -> None:
        self.state = state
        self.certificates = certificates

    @fail_closed
    def tls_start_client(self, tls_start: tls.TlsData) -> None:
        if self.certificates is None or tls_start.ssl_conn is not None:
            return
        connection = SSL.Connection(self.certificates.context())
        connection.set_accept_state()
        tls_start.ssl_conn = connection
