"""A PowerDNS authoritative server (Debian's ``pdns-server`` with ``pdns-backend-sqlite3``)
on loopback for one test module: its own configuration directory, an SQLite database made
from the schema Debian ships, DNS on a free UDP/TCP port, and the HTTP API (``api=yes``,
the webserver on loopback) that dns-lexicon's ``powerdns`` provider drives.

Nothing leaves the machine: the security poll (a DNS query to powerdns.com) is off, and
the server answers only for the zones a test creates through the API.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import time
import urllib.request
from pathlib import Path

from gateway.netutil import free_port

PDNS_SERVER = "/usr/sbin/pdns_server"
SCHEMAS = (
    Path("/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql"),
    Path("/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql"),
)


def _schema() -> Path | None:
    return next((path for path in SCHEMAS if path.exists()), None)


def _backend_installed() -> bool:
    # The library's directory depends on the architecture: look for the file by name.
    return any(Path("/usr/lib").glob("*/pdns/libgsqlite3backend.so"))


def available() -> bool:
    return (
        (Path(PDNS_SERVER).exists() or shutil.which("pdns_server") is not None)
        and _schema() is not None
        and _backend_installed()
    )


class PowerDns:
    """``pdns_server`` in the foreground, stopped by its PID in :meth:`close`."""

    API_KEY = "pdns-test-api-key"

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        database = directory / "pdns.sqlite3"
        schema = _schema()
        assert schema is not None
        with sqlite3.connect(database) as conn:
            conn.executescript(schema.read_text())
        self.dns_port = free_port()
        self.api_port = free_port()
        # An empty pdns.conf in the directory: nothing of /etc/powerdns is read.
        (directory / "pdns.conf").write_text("")
        binary = PDNS_SERVER if Path(PDNS_SERVER).exists() else shutil.which("pdns_server")
        assert binary is not None
        self._log = (directory / "pdns.log").open("w")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config-dir={directory}",
                f"--socket-dir={directory}",
                "--launch=gsqlite3",
                f"--gsqlite3-database={database}",
                "--local-address=127.0.0.1",
                f"--local-port={self.dns_port}",
                "--api=yes",
                f"--api-key={self.API_KEY}",
                "--webserver=yes",
                "--webserver-address=127.0.0.1",
                f"--webserver-port={self.api_port}",
                "--webserver-allow-from=127.0.0.0/8",
                "--guardian=no",
                "--daemon=no",
                "--disable-syslog",
                "--write-pid=no",
                "--security-poll-suffix=",
                "--loglevel=4",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_api()
        except BaseException:
            self.close()
            raise

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def _wait_api(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"pdns_server exited:\n{self.log()}")
            try:
                self.api("GET", "/api/v1/servers/localhost")
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"pdns_server's API did not start:\n{self.log()}") from None
                time.sleep(0.1)

    def api(self, method: str, path: str, body: object | None = None) -> object:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.api_url + path,
            data=data,
            method=method,
            headers={"X-API-Key": self.API_KEY, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            text = response.read()
        return json.loads(text) if text else None

    def create_zone(self, zone: str) -> None:
        """A native zone ``zone`` with an NS record, so the server is authoritative for it."""
        self.api(
            "POST",
            "/api/v1/servers/localhost/zones",
            {"name": zone.rstrip(".") + ".", "kind": "Native", "nameservers": [f"ns1.{zone}."]},
        )

    def txt(self, name: str) -> list[str]:
        """The TXT values for ``name`` as the server answers over DNS (UDP, loopback)."""
        import dns.message
        import dns.query
        import dns.rdatatype

        query = dns.message.make_query(name, dns.rdatatype.TXT)
        answer = dns.query.udp(query, "127.0.0.1", port=self.dns_port, timeout=2)
        return [
            b"".join(item.strings).decode()
            for rrset in answer.answer
            if rrset.rdtype == dns.rdatatype.TXT
            for item in rrset
        ]

    def log(self) -> str:
        self._log.flush()
        return (self.directory / "pdns.log").read_text(errors="replace")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()
