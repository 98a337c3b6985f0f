"""The certificate the gateway uses when the owner gives none: made once at first start
for the configured names and addresses, its key readable by the gateway alone."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

from cryptography import x509

from gateway.tls.certificates import ensure_certificate, self_signed_paths


def test_first_start_makes_a_self_signed_certificate_for_the_configured_names(
    tmp_path: Path,
) -> None:
    cert_path, key_path = ensure_certificate(
        cert="",
        key="",
        data_dir=tmp_path,
        hostnames=["cemm.example.org", "gateway.lan"],
        addresses=["192.168.2.10", "fd00::10"],
    )
    assert (cert_path, key_path) == self_signed_paths(tmp_path)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_path.parent.stat().st_mode) == 0o700
    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["cemm.example.org", "gateway.lan"]
    assert names.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("192.168.2.10"),
        ipaddress.ip_address("fd00::10"),
    ]
    assert not list(tmp_path.rglob("*.tmp"))

    # Later starts keep it (a browser's exception for it stays valid).
    made = cert_path.read_bytes()
    ensure_certificate(cert="", key="", data_dir=tmp_path, hostnames=["other"], addresses=[])
    assert cert_path.read_bytes() == made


def test_the_owners_files_are_used_as_given(tmp_path: Path) -> None:
    own = (tmp_path / "own.crt", tmp_path / "own.key")
    found = ensure_certificate(
        cert=str(own[0]), key=str(own[1]), data_dir=tmp_path, hostnames=[], addresses=[]
    )
    assert found == own
    assert not self_signed_paths(tmp_path)[0].exists()
