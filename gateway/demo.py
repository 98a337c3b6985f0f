"""``cemm-gateway demo``: the gateway in front of the built-in CEMM simulator.

Everything runs in one process on free unprivileged ports, with a throw-away data
directory: a newcomer opens the printed address and sees the CEMM's dashboard with live
readings, served through the gateway. The banner (:func:`banner`) also gives the admin
app's address and, with ``--listen-host 0.0.0.0`` (or ``::``, or every address), the
address a phone on the same network opens: the machine's LAN address
(:func:`lan_address`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import shutil
import signal
import tempfile
from pathlib import Path

from gateway.app import Gateway
from gateway.auth.passwords import generate_password
from gateway.netutil import free_port, local_addresses
from gateway.settings import load_settings
from gateway.simulator import SimulatorConfig, start_simulator

logger = logging.getLogger("cemm_gateway.demo")


def _write_config(
    path: Path,
    data_dir: Path,
    sim_http: int,
    sim_ws: int,
    ports: dict[str, int],
    listen_host: str,
    password: str,
) -> None:
    path.write_text(
        "# Written by 'cemm-gateway demo'; a real configuration is config/gateway.toml.\n"
        f'data_dir = "{data_dir}"\n\n'
        "[upstream]\n"
        'host = "127.0.0.1"\n'
        f"http_port = {sim_http}\n"
        f"ws_port = {sim_ws}\n\n"
        "[listen]\n"
        f'host = "{listen_host}"\n'
        f"http_port = {ports['http']}\n"
        f"ws_port = {ports['ws']}\n"
        f"admin_port = {ports['admin']}\n\n"
        "[auth]\n"
        'initial_admin = "admin"\n'
        f'initial_admin_password = "{password}"\n'
    )


# Home networks first: a phone on the owner's Wi-Fi is on one of these.
_LAN_PREFERENCE = ("192.168.0.0/16", "10.0.0.0/8", "172.16.0.0/12")


def lan_address(addresses: list[str]) -> str | None:
    """The address of this machine a phone on the same network opens: a private IPv4
    address (192.168.x first, then 10.x, then 172.16-31.x) - the demo's allowlist admits
    private networks only; None if there is none."""
    candidates = []
    for text in addresses:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            continue
        for rank, network in enumerate(_LAN_PREFERENCE):
            if address in ipaddress.ip_network(network):
                candidates.append((rank, address.packed, text))
    return min(candidates)[2] if candidates else None


def banner(
    *,
    listen_host: str,
    ports: dict[str, int],
    simulator_port: int,
    password: str,
    config_path: Path,
    lan: str | None,
) -> str:
    """What the demo prints once it listens: where to open it, on this machine and (when
    it listens on every address) on a phone on the same network."""
    every = listen_host in ("", "0.0.0.0", "::")
    shown = "127.0.0.1" if every else listen_host
    lines = [
        f"  CEMM simulator (the device):  http://127.0.0.1:{simulator_port}/",
        f"  Gateway - open this:          http://{shown}:{ports['http']}/",
        f"  Log in as:                    admin / {password}",
        f"  Admin app:                    http://{shown}:{ports['admin']}/",
        f"  Live data through the gateway: ws://{shown}:{ports['ws']}/",
        f"  Admin health check:           http://{shown}:{ports['admin']}/healthz",
    ]
    if every and lan is not None:
        lines += [
            f"  On a phone on the same network: http://{lan}:{ports['http']}/",
            f"  Admin app from the phone:       http://{lan}:{ports['admin']}/",
        ]
    elif every:
        lines.append(
            "  (no LAN address found: a phone can open the demo when this machine has a "
            "private address, 192.168.x, 10.x or 172.16-31.x)"
        )
    lines.append(f"  Configuration used:           {config_path}")
    return "\n" + "\n".join(lines) + "\n\n  Press Ctrl-C to stop.\n"


async def run_demo(*, listen_host: str = "127.0.0.1") -> int:
    workdir = Path(tempfile.mkdtemp(prefix="cemm-gateway-demo-"))
    ports = {
        name: free_port(listen_host if listen_host else "127.0.0.1")
        for name in ("http", "ws", "admin")
    }
    simulator = await start_simulator(
        SimulatorConfig(host="127.0.0.1", http_port=0, ws_port=0, page_ws_port=ports["ws"])
    )
    config_path = workdir / "gateway.toml"
    password = generate_password(username="admin")
    _write_config(
        config_path,
        workdir / "data",
        simulator.http_port,
        simulator.ws_port,
        ports,
        listen_host,
        password,
    )
    gateway = Gateway(load_settings(config_path))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await gateway.start()
        text = banner(
            listen_host=listen_host,
            ports=ports,
            simulator_port=simulator.http_port,
            password=password,
            config_path=config_path,
            lan=lan_address(local_addresses()),
        )
        print(text, flush=True)
        await stop.wait()
    finally:
        await gateway.stop()
        await simulator.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0
