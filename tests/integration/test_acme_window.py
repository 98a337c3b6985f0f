"""The ACME HTTP-01 window over real sockets, without a CA: tokens are put on the gateway's
challenge board by hand, the ACME directory is unreachable (so every order fails).

The allowlist admits 127.0.0.5 only (also a trusted proxy); 127.0.0.1 and the other
127.0.0.x are "outside". Shown here: while a token is
pending an outside address gets exactly the token's answer and nothing else - every
other path, method, token, TLS, the ws and admin ports: connection closed, zero bytes -
and after the order it gets nothing at all, even on a connection opened during it. The
HTTPS redirect skips an answered challenge. A failing order leaves the stand-in
certificate serving and records the error.

A window connection stays open across a policy reload while the order is pending (the CA
validates from several places at once) and is closed when the order ends; at most
``MAX_WINDOW_CONNECTIONS`` are open at a time; ``Expect`` is refused; the audit names the
client a trusted proxy reported and logs the token cut to eight characters.
"""

from __future__ import annotations

import socket
import sqlite3
import ssl
import time
from collections.abc import Iterator

import httpx
import pytest

from addons.acme_challenge import MAX_WINDOW_CONNECTIONS
from gateway.netutil import free_port
from tests.support.gateway import GatewayConfig, InProcessGateway, SimulatorThread, wait_for

INSIDE, OUTSIDE = "127.0.0.5", "127.0.0.1"
TOKEN = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
OTHER = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
ANSWER = f"{TOKEN}.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
PATH = f"/.well-known/acme-challenge/{TOKEN}"
PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    directory = tmp_path_factory.mktemp("acme-window")
    simulator = SimulatorThread()
    config = GatewayConfig(
        directory,
        upstream_http_port=simulator.http_port,
        upstream_ws_port=simulator.ws_port,
    )
    config.extra = (
        "[tls]\nenabled = true\n"
        f'[allowlist]\ndefault_networks = ["{INSIDE}/32"]\nadmin_networks = ["{INSIDE}/32"]\n'
        f'trusted_proxies = ["{INSIDE}/32"]\n'
        f'[auth]\ninitial_admin_password = "{PASSWORD}"\n'
        "[limits]\nheader_timeout = 2\n"
        "[acme]\nenabled = true\n"
        'domains = ["cemm.example.com"]\n'
        f'directory_url = "https://127.0.0.1:{free_port()}/dir"\n'
    )
    gateway = InProcessGateway(config)
    try:
        yield gateway
    finally:
        gateway.close()
        simulator.close()


def exchange(source: str, port: int, data: bytes, *, timeout: float = 5.0) -> tuple[bytes, bool]:
    """Send ``data`` from ``source``; everything received until the connection closed, and
    whether it closed (False: it was still open after ``timeout``)."""
    with socket.socket() as sock:
        sock.bind((source, 0))
        sock.settimeout(timeout)
        sock.connect(("127.0.0.1", port))
        received = b""
        try:
            sock.sendall(data)
            while chunk := sock.recv(65536):
                received += chunk
        except (ConnectionResetError, BrokenPipeError):
            return received, True
        except TimeoutError:
            return received, False
        return received, True


def get(path: str, method: str = "GET", extra: str = "") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: cemm.example.com\r\n{extra}\r\n".encode()


def client_hello() -> bytes:
    """The first flight of a real TLS handshake, taken from an in-memory TLS client."""
    context = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="cemm.example.com")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


@pytest.fixture
def pending(gateway: InProcessGateway) -> Iterator[None]:
    acme = gateway.gateway.acme
    assert acme is not None
    acme.board.add(TOKEN, ANSWER)
    try:
        yield
    finally:
        acme.board.clear()


def test_nothing_pending_refuses_outside(gateway: InProcessGateway) -> None:
    port = gateway.config.http_port
    assert exchange(OUTSIDE, port, get(PATH)) == (b"", True)


def test_pending_token_is_answered_to_outside(gateway: InProcessGateway, pending: None) -> None:
    received, closed = exchange(OUTSIDE, gateway.config.http_port, get(PATH))
    assert closed
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"connection: close" in head.lower()
    assert body == ANSWER.encode()


@pytest.mark.parametrize(
    "request_bytes",
    [
        get("/"),
        get("/.gateway/login"),
        get(PATH, "HEAD"),
        get(PATH, "POST", "Content-Length: 5\r\n") + b"hello",
        get(PATH, "GET", "Content-Length: 5\r\n") + b"hello",
        get(PATH, "GET", "Expect: 100-continue\r\n"),
        get(f"/.well-known/acme-challenge/{OTHER}"),
        get(PATH + "?x=1"),
        get(PATH + "/"),
        get(PATH.upper()),
        get("/.well-known/acme-challenge/"),
        b"GARBAGE\r\n\r\n",
        client_hello(),
    ],
    ids=[
        "root",
        "login",
        "head",
        "post",
        "get-with-body",
        "expect-continue",
        "other-token",
        "query",
        "trailing-slash",
        "upper-case",
        "no-token",
        "garbage",
        "tls",
    ],
)
def test_everything_else_outside_gets_nothing(
    gateway: InProcessGateway, pending: None, request_bytes: bytes
) -> None:
    assert exchange(OUTSIDE, gateway.config.http_port, request_bytes) == (b"", True)


@pytest.mark.parametrize("port", ["ws", "admin"])
def test_other_ports_refuse_outside_during_the_order(
    gateway: InProcessGateway, pending: None, port: str
) -> None:
    number = {"ws": gateway.config.ws_port, "admin": gateway.config.admin_port}[port]
    assert exchange(OUTSIDE, number, get(PATH)) == (b"", True)


def test_a_request_pipelined_after_the_challenge_gets_nothing(
    gateway: InProcessGateway, pending: None
) -> None:
    # The screen admits one whole challenge head and nothing after it.
    assert exchange(OUTSIDE, gateway.config.http_port, get(PATH) + get("/")) == (b"", True)


def test_the_answer_closes_the_connection(gateway: InProcessGateway, pending: None) -> None:
    with socket.socket() as sock:
        sock.bind((OUTSIDE, 0))
        sock.settimeout(5)
        sock.connect(("127.0.0.1", gateway.config.http_port))
        sock.sendall(get(PATH))
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        assert received.endswith(ANSWER.encode())
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            for _ in range(20):
                sock.sendall(get("/"))
                time.sleep(0.05)


def test_a_head_that_never_ends_is_closed_at_the_header_timeout(
    gateway: InProcessGateway, pending: None
) -> None:
    started = time.monotonic()
    received = exchange(OUTSIDE, gateway.config.http_port, get(PATH)[:-2], timeout=10)
    assert received == (b"", True)
    assert time.monotonic() - started < 5


def test_connection_opened_during_the_order_gets_nothing_after(
    gateway: InProcessGateway,
) -> None:
    acme = gateway.gateway.acme
    assert acme is not None
    acme.board.add(TOKEN, ANSWER)
    with socket.socket() as sock:
        sock.bind((OUTSIDE, 0))
        sock.settimeout(5)
        sock.connect(("127.0.0.1", gateway.config.http_port))
        time.sleep(0.2)  # admitted while pending
        acme.board.clear()
        sock.sendall(get(PATH))
        try:
            assert sock.recv(65536) == b""
        except ConnectionResetError:
            pass


def test_inside_client_gets_the_answer_over_plain_http_not_a_redirect(
    gateway: InProcessGateway, pending: None
) -> None:
    received, _ = exchange(
        INSIDE, gateway.config.http_port, get(PATH, extra="Connection: close\r\n")
    )
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert body == ANSWER.encode()
    # Any other plain request is still redirected to HTTPS.
    received, _ = exchange(
        INSIDE, gateway.config.http_port, get("/", extra="Connection: close\r\n")
    )
    assert received.startswith(b"HTTP/1.1 308 ")


def audited_answers(gateway: InProcessGateway) -> list[str]:
    conn = sqlite3.connect(gateway.config.data_dir / "gateway.db", timeout=5)
    try:
        rows = conn.execute(
            "SELECT detail FROM audit_log WHERE event = 'acme.challenge_answered'"
        ).fetchall()
    finally:
        conn.close()
    return [str(row[0]) for row in rows]


def test_answers_are_audited(gateway: InProcessGateway, pending: None) -> None:
    exchange(OUTSIDE, gateway.config.http_port, get(PATH))
    wait_for(
        lambda: any(OUTSIDE in detail for detail in audited_answers(gateway)),
        "the answered challenge is in the audit log",
    )
    # The token as every log shows it: its first eight characters.
    assert all(TOKEN not in detail for detail in audited_answers(gateway))
    assert any(f"{TOKEN[:8]}[redacted]" in detail for detail in audited_answers(gateway))


def test_the_audit_names_the_client_a_trusted_proxy_reported(
    gateway: InProcessGateway, pending: None
) -> None:
    forwarded = "127.0.0.99"
    received, _ = exchange(
        INSIDE,
        gateway.config.http_port,
        get(PATH, extra=f"X-Forwarded-For: {forwarded}\r\nConnection: close\r\n"),
    )
    assert received.startswith(b"HTTP/1.1 200 ")
    wait_for(
        lambda: any(forwarded in detail for detail in audited_answers(gateway)),
        "the forwarded client is in the audit log",
    )


def test_a_window_connection_survives_a_policy_reload(
    gateway: InProcessGateway, pending: None
) -> None:
    # The CA validates from several places at once: the audit of one answer (a database
    # write, so a policy reload) must not cut another connection that is still waiting.
    state = gateway.gateway.state
    assert state is not None
    with socket.socket() as waiting:
        waiting.bind(("127.0.0.20", 0))
        waiting.settimeout(5)
        waiting.connect(("127.0.0.1", gateway.config.http_port))
        generation = state.policy.generation
        received, _ = exchange("127.0.0.21", gateway.config.http_port, get(PATH))
        assert received.startswith(b"HTTP/1.1 200 ")
        wait_for(lambda: state.policy.generation > generation, "the policy was reloaded", 1.5)
        time.sleep(0.1)
        waiting.sendall(get(PATH))
        received = b""
        while chunk := waiting.recv(65536):
            received += chunk
        assert received.startswith(b"HTTP/1.1 200 ")
        assert received.endswith(ANSWER.encode())


def test_window_connections_are_closed_when_the_order_ends(
    gateway: InProcessGateway,
) -> None:
    acme = gateway.gateway.acme
    assert acme is not None
    acme.board.add(TOKEN, ANSWER)
    try:
        with socket.socket() as sock:
            sock.bind(("127.0.0.22", 0))
            sock.settimeout(5)
            sock.connect(("127.0.0.1", gateway.config.http_port))
            time.sleep(0.2)  # admitted while pending
            acme.board.clear()
            ended = time.monotonic()
            try:
                assert sock.recv(65536) == b""
            except ConnectionResetError:
                pass
            # Well before the header timeout (2 s): the end of the order closed it.
            assert time.monotonic() - ended < 1.5
    finally:
        acme.board.clear()


def test_window_connections_are_capped_in_total(gateway: InProcessGateway, pending: None) -> None:
    port = gateway.config.http_port
    held: list[socket.socket] = []
    try:
        # From several addresses (the per-address cap is far away): the total counts.
        for number in range(MAX_WINDOW_CONNECTIONS):
            sock = socket.socket()
            held.append(sock)
            sock.bind((f"127.0.0.{30 + number % 8}", 0))
            sock.connect(("127.0.0.1", port))
        time.sleep(0.3)
        # One more is refused at once, before the header timeout (2 s).
        started = time.monotonic()
        assert exchange("127.0.0.40", port, b"", timeout=1.5) == (b"", True)
        assert time.monotonic() - started < 1.5
        # The ones held are still open.
        for sock in held:
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(1)
    finally:
        for sock in held:
            sock.close()

    # Once they are gone, the window admits again.
    def answered() -> bool:
        received, _ = exchange("127.0.0.40", port, get(PATH))
        return received.startswith(b"HTTP/1.1 200 ")

    wait_for(answered, "a window connection is admitted again", 5)


def test_failed_order_keeps_the_stand_in_and_says_why(gateway: InProcessGateway) -> None:
    acme = gateway.gateway.acme
    assert acme is not None
    wait_for(lambda: acme.status().last_attempt is not None, "the first order was tried")
    status = acme.status()
    assert status.last_attempt is not None and not status.last_attempt.ok
    assert "cannot reach the ACME directory" in status.last_attempt.error
    assert not status.issued
    assert status.names == ("cemm.example.com",)
    # The stand-in serves HTTPS meanwhile.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.socket() as sock:
        sock.bind((INSIDE, 0))
        sock.connect(("127.0.0.1", gateway.config.http_port))
        with context.wrap_socket(sock, server_hostname="cemm.example.com") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_dashboard_shows_the_certificate_and_the_error(gateway: InProcessGateway) -> None:
    acme = gateway.gateway.acme
    assert acme is not None
    wait_for(lambda: acme.status().last_attempt is not None, "the first order was tried")
    transport = httpx.HTTPTransport(local_address=INSIDE, verify=False)
    base = f"https://127.0.0.1:{gateway.config.admin_port}"
    with httpx.Client(base_url=base, transport=transport, timeout=15) as client:
        response = client.post(
            "/.gateway/api/login", json={"username": "admin", "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        status = client.get("/api/status").json()
        certificate = status["certificate"]
        assert certificate["names"] == ["cemm.example.com"]
        assert certificate["issued"] is False
        assert certificate["last_attempt_ok"] is False
        assert "cannot reach the ACME directory" in certificate["last_error"]
        page = client.get("/").text
        assert 'data-panel="certificate"' in page
        assert "self-signed until the first order succeeds" in page
        assert "failed: cannot reach the ACME directory" in page
