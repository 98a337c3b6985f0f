"""``cemm-gateway demo --listen-host 0.0.0.0`` prints addresses that answer: the gateway and
the admin app on this machine, and the LAN address a phone on the same network opens."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx

from gateway.demo import lan_address
from gateway.netutil import local_addresses
from tests.support.gateway import ROOT


def _banner(process: subprocess.Popen[str], timeout: float = 40.0) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        lines.append(line)
        if "Press Ctrl-C to stop." in line:
            return "".join(lines)
    raise AssertionError("the demo printed no banner:\n" + "".join(lines)[-3000:])


def _is_the_login(url: str) -> None:
    """The gateway answers there: without a session, "You need to log in"."""
    page = httpx.get(url, timeout=10, follow_redirects=True)
    assert page.status_code == 401 and "You need to log in" in page.text, (url, page.text)


def test_demo_prints_the_admin_app_and_the_lan_address() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "demo", "--listen-host", "0.0.0.0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("CEMM_GATEWAY_")},
    )
    try:
        text = _banner(process)
        gateway = re.search(r"Gateway - open this: +(http://127\.0\.0\.1:\d+/)", text)
        admin = re.search(r"Admin app: +(http://127\.0\.0\.1:(\d+)/)", text)
        assert gateway and admin, text
        _is_the_login(gateway.group(1))
        page = httpx.get(admin.group(1), timeout=10, follow_redirects=True)
        assert page.status_code == 200 and "<form" in page.text
        lan = lan_address(local_addresses())
        if lan is None:
            assert "no LAN address found" in text
        else:
            phone = re.search(r"On a phone on the same network: (http://([\d.]+):\d+/)", text)
            from_phone = re.search(r"Admin app from the phone: +http://([\d.]+):(\d+)/", text)
            assert phone and from_phone, text
            assert phone.group(2) == lan == from_phone.group(1)
            assert from_phone.group(2) == admin.group(2)
            # The machine's own address: the request never leaves it.
            _is_the_login(phone.group(1))
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
