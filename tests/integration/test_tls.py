"""HTTPS on every listener: a TLS scan, certificate renewal without restart, plain-HTTP
redirects, the secure session cookie, and the same-origin WebSocket tunnel."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from sslyze import (
    ScanCommand,
    ScanCommandAttemptStatusEnum,
    Scanner,
    ServerNetworkLocation,
    ServerScanRequest,
    ServerScanStatusEnum,
)
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from gateway.tls.certificates import make_self_signed
from tests.support.gateway import GatewayConfig, GatewayProcess, SimulatorThread

PASSWORD = "correct-horse-battery-staple"
WEAK = ("NULL", "anon", "ADH", "AECDH", "EXPORT", "RC4", "DES", "MD5", "CBC", "_RSA_WITH_")


def _fingerprint(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(pem).fingerprint(hashes.SHA256())


def _served_certificate(port: int) -> bytes:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
        context.wrap_socket(sock, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der).fingerprint(hashes.SHA256())


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayConfig, Path]]:
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "owner.crt", directory / "owner.key"
    make_self_signed(
        cert, key, hostnames=["localhost", "cemm.example.org"], addresses=["127.0.0.1"]
    )
    config = GatewayConfig(directory, upstream_http_port=0, upstream_ws_port=0)
    simulator = SimulatorThread(page_ws_port=config.ws_port)
    config.upstream_http_port, config.upstream_ws_port = simulator.http_port, simulator.ws_port
    config.extra = (
        f'[tls]\nenabled = true\ncert = "{cert}"\nkey = "{key}"\nhsts = true\n'
        f'[auth]\ninitial_admin_password = "{PASSWORD}"\n'
    )
    gateway = GatewayProcess(config, https=True)
    try:
        yield config, cert
    finally:
        gateway.close()
        simulator.close()


def _https(config: GatewayConfig, path: str, port: str = "http") -> str:
    return config.url(path, port=port).replace("http://", "https://", 1)


def test_tls_scan_of_every_listener(env) -> None:
    config, cert = env
    expected = _fingerprint(cert.read_bytes())
    commands = {
        ScanCommand.CERTIFICATE_INFO,
        ScanCommand.SSL_2_0_CIPHER_SUITES,
        ScanCommand.SSL_3_0_CIPHER_SUITES,
        ScanCommand.TLS_1_0_CIPHER_SUITES,
        ScanCommand.TLS_1_1_CIPHER_SUITES,
        ScanCommand.TLS_1_2_CIPHER_SUITES,
        ScanCommand.TLS_1_3_CIPHER_SUITES,
        ScanCommand.TLS_COMPRESSION,
    }
    scanner = Scanner()
    ports = {"web": config.http_port, "ws": config.ws_port, "admin": config.admin_port}
    scanner.queue_scans(
        [
            ServerScanRequest(
                server_location=ServerNetworkLocation("localhost", port, ip_address="127.0.0.1"),
                scan_commands=commands,
            )
            for port in ports.values()
        ]
    )
    results = list(scanner.get_results())
    assert len(results) == 3
    for result in results:
        where = result.server_location.port
        assert result.scan_status == ServerScanStatusEnum.COMPLETED, where
        scan = result.scan_result
        assert scan is not None
        for attempt in (
            scan.ssl_2_0_cipher_suites,
            scan.ssl_3_0_cipher_suites,
            scan.tls_1_0_cipher_suites,
            scan.tls_1_1_cipher_suites,
        ):
            assert attempt.status == ScanCommandAttemptStatusEnum.COMPLETED
            assert attempt.result.accepted_cipher_suites == [], where
        tls12 = [
            s.cipher_suite.name for s in scan.tls_1_2_cipher_suites.result.accepted_cipher_suites
        ]
        tls13 = [
            s.cipher_suite.name for s in scan.tls_1_3_cipher_suites.result.accepted_cipher_suites
        ]
        assert tls12 and tls13, where
        for name in tls12 + tls13:
            assert not any(weak in name for weak in WEAK), (where, name)
        assert all("ECDHE" in name for name in tls12), tls12
        assert scan.tls_compression.result.supports_compression is False
        deployment = scan.certificate_info.result.certificate_deployments[0]
        leaf = deployment.received_certificate_chain[0]
        assert leaf.fingerprint(hashes.SHA256()) == expected, where
        print(f"port {where}: TLS 1.2 {tls12}; TLS 1.3 {tls13}")


def test_plain_http_is_redirected_to_https(env) -> None:
    config, _ = env
    response = httpx.get(config.url("/instellingen/systeem?x=1"), timeout=5)
    assert response.status_code == 308
    assert response.headers["location"] == _https(config, "/instellingen/systeem?x=1")
    with pytest.raises(InvalidStatus) as refused:
        connect(config.ws_url("/ws"), open_timeout=5)
    assert refused.value.response.status_code == 403


def test_https_login_sets_a_secure_host_cookie_and_hsts(env) -> None:
    config, _ = env
    response = httpx.post(
        _https(config, "/.gateway/api/login"),
        json={"username": "admin", "password": PASSWORD},
        verify=False,
        timeout=10,
    )
    assert response.status_code == 200
    # The session's cookie among those the login sets (the known-device cookie is another).
    cookies = response.headers.get_list("set-cookie")
    (cookie,) = [c for c in cookies if c.startswith("__Host-cemm_session=")]
    assert "Secure" in cookie and "HttpOnly" in cookie and "Path=/;" in cookie + ";"
    assert "Domain" not in cookie
    # The known-device cookie is Secure too, and scoped to the gateway's own paths.
    (device,) = [c for c in cookies if c.startswith("__Secure-cemm_device=")]
    assert "Secure" in device and "HttpOnly" in device and "Path=/.gateway/" in device
    assert response.headers["strict-transport-security"] == "max-age=31536000"


def _login(config: GatewayConfig) -> str:
    response = httpx.post(
        _https(config, "/.gateway/api/login"),
        json={"username": "admin", "password": PASSWORD},
        verify=False,
        timeout=10,
    )
    return response.cookies["__Host-cemm_session"]


def _insecure() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def test_same_origin_websocket_tunnel(env) -> None:
    config, _ = env
    token = _login(config)
    origin = f"https://127.0.0.1:{config.http_port}"
    url = f"wss://127.0.0.1:{config.http_port}/.gateway/ws/ws"
    cookie = {"Cookie": f"__Host-cemm_session={token}"}
    with connect(
        url, origin=origin, additional_headers=cookie, ssl=_insecure(), open_timeout=5
    ) as ws:
        assert json.loads(ws.recv(timeout=3))["type"] == "reading"
        ws.send("through the tunnel")
        while (message := ws.recv(timeout=3)) != "through the tunnel":
            assert message.startswith("{")
    for headers, origin_used, status in (
        ({}, origin, 401),
        (cookie, "https://evil.example", 403),
        ({"Cookie": "__Host-cemm_session=garbage"}, origin, 401),
    ):
        with pytest.raises(InvalidStatus) as refused:
            connect(
                url, origin=origin_used, additional_headers=headers, ssl=_insecure(), open_timeout=5
            )
        assert refused.value.response.status_code == status


def test_cemm_pages_get_the_fixup_script(env) -> None:
    config, _ = env
    token = _login(config)
    page = httpx.get(
        _https(config, "/instellingen/systeem"),
        cookies={"__Host-cemm_session": token},
        verify=False,
        timeout=5,
    )
    assert page.status_code == 200
    head = page.text.split("</head>", 1)[0]
    assert head.index('src="/.gateway/static/ws-fixup.js"') < head.index('src="/assets/app.js"')
    script = httpx.get(_https(config, "/.gateway/static/ws-fixup.js"), verify=False, timeout=5)
    assert script.status_code == 200
    assert "GatewayWebSocket" in script.text
    # JSON from the CEMM is untouched.
    api = httpx.get(
        _https(config, "/api/v1/public/cemm"),
        cookies={"__Host-cemm_session": token},
        verify=False,
        timeout=5,
    )
    assert "ws-fixup" not in api.text


def test_renewed_certificate_is_served_without_restart(env) -> None:
    config, cert = env
    key = cert.with_suffix(".key")
    before = _served_certificate(config.http_port)
    assert before == _fingerprint(cert.read_bytes())
    staging = cert.parent / "renewal"
    staging.mkdir(exist_ok=True)
    make_self_signed(
        staging / "new.crt", staging / "new.key", hostnames=["localhost"], addresses=["127.0.0.1"]
    )
    # As certbot-like tools do: write the new files, then move them into place.
    shutil.copy(staging / "new.key", key.with_suffix(".key.new"))
    shutil.copy(staging / "new.crt", cert.with_suffix(".crt.new"))
    key.with_suffix(".key.new").replace(key)
    cert.with_suffix(".crt.new").replace(cert)
    expected = _fingerprint(cert.read_bytes())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if _served_certificate(config.http_port) == expected:
            break
        time.sleep(0.2)
    assert _served_certificate(config.http_port) == expected
    assert _served_certificate(config.admin_port) == expected
    assert expected != before
