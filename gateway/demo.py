"""``cemm-gateway demo``: the gateway in front of the built-in CEMM simulator.

Everything runs in one process on free unprivileged ports, with a throw-away data
directory: a newcomer opens the printed address and sees the CEMM's dashboard with live
readings, served through the gateway.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import tempfile
from pathlib import Path

from gateway.app import Gateway
from gateway.auth.passwords import generate_password
from gateway.netutil import free_port
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
        shown = "127.0.0.1" if listen_host in ("", "0.0.0.0", "::") else listen_host
        print(
            "\n"
            f"  CEMM simulator (the device):  http://127.0.0.1:{simulator.http_port}/\n"
            f"  Gateway - open this:          http://{shown}:{ports['http']}/\n"
            f"  Log in as:                    admin / {password}\n"
            f"  Live data through the gateway: ws://{shown}:{ports['ws']}/\n"
            f"  Admin health check:           http://{shown}:{ports['admin']}/healthz\n"
            f"  Configuration used:           {config_path}\n"
            "\n  Press Ctrl-C to stop.\n",
            flush=True,
        )
        await stop.wait()
    finally:
        await gateway.stop()
        await simulator.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0
