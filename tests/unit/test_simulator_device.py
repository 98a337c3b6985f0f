"""Unit tests for the CEMM simulator's pure parts: settings, documents, readings, page, CLI.

No sockets here; the running simulator is covered in tests/integration/test_simulator_*.
"""

from __future__ import annotations

import argparse
import ast
import math
import re
import subprocess
import sys
from pathlib import Path
from string import Template

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.simulator import PAGE_MODES, SimulatorConfig, add_arguments, normalize_mac
from gateway.simulator.cli import config_from_args
from gateway.simulator.device import (
    METERS,
    Device,
    live_channels,
    meters_document,
    reading_message,
)
from gateway.simulator.live import close_code_problem
from gateway.simulator.traffic import RecordedRequest, Traffic, header_pairs
from gateway.simulator.web import render_page

SIMULATOR_DIR = Path(__file__).resolve().parents[2] / "gateway" / "simulator"
CEMM_KEYS = {
    "id",
    "name",
    "icon",
    "icon_color",
    "mac",
    "local_ip",
    "version",
    "timezone",
    "time",
    "modules",
    "currency",
}


# --- MAC addresses -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_mac", "expected"),
    [
        ("80:1F:12:47:06:B0", "80:1F:12:47:06:B0"),
        ("80:1f:12:47:06:b0", "80:1F:12:47:06:B0"),
        ("80-1f-12-47-06-b0", "80:1F:12:47:06:B0"),
        (" 80:1F:12:47:06:B0\n", "80:1F:12:47:06:B0"),
    ],
)
def test_normalize_mac_accepts_common_spellings(given_mac: str, expected: str) -> None:
    assert normalize_mac(given_mac) == expected


@pytest.mark.parametrize(
    "bad",
    ["", "80:1F:12:47:06", "80:1F:12:47:06:B0:00", "80:1F-12:47:06:B0", "80:1G:12:47:06:B0",
     "801F124706B0", "80:1F:12:47:06:B"],
)  # fmt: skip
def test_normalize_mac_rejects_with_an_example(bad: str) -> None:
    with pytest.raises(ValueError, match="80:1F:12:47:06:B0"):
        normalize_mac(bad)


@given(st.binary(min_size=6, max_size=6), st.sampled_from([":", "-"]), st.booleans())
def test_normalize_mac_is_canonical_for_any_address(raw: bytes, sep: str, upper: bool) -> None:
    spelled = sep.join(f"{b:02X}" if upper else f"{b:02x}" for b in raw)
    assert normalize_mac(spelled) == ":".join(f"{b:02X}" for b in raw)


# --- settings ----------------------------------------------------------------------------


def test_config_defaults_match_the_real_device() -> None:
    config = SimulatorConfig()
    assert (config.host, config.http_port, config.ws_port) == ("127.0.0.1", 8080, 8090)
    assert config.mac == "80:1F:12:47:06:B0"
    assert config.page_mode == "hostname-port"
    assert config.page_ws_port is None
    assert (config.ws_path, config.interval, config.clock_skew) == ("/ws", 1.0, 0.0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"mac": "nope"}, "not a MAC address"),
        ({"http_port": 70000}, "HTTP port 70000 is out of range"),
        ({"ws_port": -1}, "WebSocket port -1 is out of range"),
        ({"page_ws_port": 0}, "page WebSocket port 0"),
        ({"ws_path": "ws"}, "must start with '/'"),
        ({"ws_path": "/ws?x=1"}, "must start with '/'"),
        ({"interval": 0}, "more than 0"),
        ({"interval": math.inf}, "more than 0"),
        ({"clock_skew": math.nan}, "finite"),
        ({"page_mode": "magic"}, "hostname-port, protocol-aware, same-origin"),
    ],
)
def test_config_rejects_bad_settings_clearly(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        SimulatorConfig(**overrides)  # type: ignore[arg-type]


# --- documents and readings --------------------------------------------------------------


def _device(**overrides: object) -> Device:
    config = SimulatorConfig(http_port=0, ws_port=0, **overrides)  # type: ignore[arg-type]
    return Device(config=config, http_port=18080, ws_port=18090)


def test_info_document_has_the_documented_shape() -> None:
    device = _device(clock=lambda: 1_736_428_623.7, clock_skew=-3.0, mac="aa:bb:cc:dd:ee:ff")
    info = device.info_document("192.168.2.34")
    assert set(info) == CEMM_KEYS
    assert info["mac"] == "AA:BB:CC:DD:EE:FF"
    assert info["local_ip"] == "192.168.2.34"
    assert info["time"] == 1_736_428_620
    assert isinstance(info["id"], int)
    assert info["timezone"] == "Europe/Amsterdam"
    assert info["currency"] == "EUR"
    assert "smartmeter" in info["modules"]


def test_device_clock_follows_skew_changes() -> None:
    now = [1_000_000.0]
    device = _device(clock=lambda: now[0])
    assert device.now() == 1_000_000.0
    device.config.clock_skew = 3600
    now[0] += 10
    assert device.now() == 1_003_610.0


def test_meters_document_has_a_hoofdmeter_with_channels() -> None:
    meters = meters_document()["meters"]
    main = meters[0]
    assert {k: main[k] for k in ("key", "label", "type", "role")} == {
        "key": "hoofdmeter",
        "label": "Hoofdmeter",
        "type": "electricity",
        "role": "grid-connection",
    }
    assert main["channels"][0] == {
        "id": 1,
        "key": "electric_power_import",
        "label": "Vermogen afname",
        "unit": "W",
        "aggregation_method": "AVG",
    }
    channel_ids = [c["id"] for m in METERS for c in m["channels"]]
    assert len(channel_ids) == len(set(channel_ids))
    for meter in meters:
        assert set(meter) == {"id", "key", "label", "type", "role", "channels"}
        for channel in meter["channels"]:
            assert set(channel) == {"id", "key", "label", "unit", "aggregation_method"}


@given(st.floats(min_value=0, max_value=4_000_000_000, allow_nan=False))
def test_live_channels_are_physically_plausible(device_time: float) -> None:
    values = live_channels(device_time)
    assert values["electric_power_import"] >= 0
    assert values["electric_power_export"] >= 0
    # The grid connection either imports or exports at one moment, never both.
    assert values["electric_power_import"] == 0 or values["electric_power_export"] == 0
    assert 0 <= values["electric_power_production"] <= 1800
    assert 225 <= values["voltage_l1"] <= 235


def test_reading_message_is_net_power_with_seq_and_device_time() -> None:
    message = reading_message(7, 1_736_428_623.9)
    channels = message["channels"]
    assert message["type"] == "reading"
    assert message["seq"] == 7
    assert message["time"] == 1_736_428_623
    assert message["power_w"] == pytest.approx(
        channels["electric_power_import"] - channels["electric_power_export"]
    )
    meter_keys = {c["key"] for m in METERS for c in m["channels"]}
    assert set(channels) <= meter_keys


def test_page_ws_port_defaults_to_the_own_websocket_port() -> None:
    assert _device().page_ws_port == 18090
    assert _device(page_ws_port=443).page_ws_port == 443


# --- the page ----------------------------------------------------------------------------

INDEX = Template((SIMULATOR_DIR / "static" / "index.html").read_text(encoding="utf-8"))
APP_JS = (SIMULATOR_DIR / "static" / "assets" / "app.js").read_text(encoding="utf-8")


def test_page_carries_the_websocket_settings_in_meta_tags() -> None:
    page = render_page(INDEX, _device(page_mode="same-origin", ws_path="/live/ws", interval=0.5))
    assert '<meta name="cemm-ws-mode" content="same-origin">' in page
    assert '<meta name="cemm-ws-port" content="18090">' in page
    assert '<meta name="cemm-ws-path" content="/live/ws">' in page
    assert '<meta name="cemm-interval" content="0.5">' in page


def test_page_escapes_the_path() -> None:
    page = render_page(INDEX, _device(ws_path='/a"b<c'))
    assert 'content="/a&quot;b&lt;c"' in page


def test_page_works_under_a_strict_csp() -> None:
    page = render_page(INDEX, _device())
    scripts = re.findall(r"<script\b[^>]*>", page)
    assert scripts, "the page must load its script"
    assert all(re.search(r'\bsrc="/assets/[^"]+"', tag) for tag in scripts)
    assert "<style" not in page
    assert not re.search(r"\sstyle=", page)
    assert not re.search(r"\son[a-z]+=", page), "no inline event handlers"


def test_page_has_the_elements_browser_tests_wait_for() -> None:
    page = render_page(INDEX, _device())
    for element in ('id="power"', 'id="status"', 'data-state="connecting"', 'id="banner"'):
        assert element in page
    assert 'href="/instellingen/systeem"' in page
    assert 'href="/dashboard"' in page


def test_script_builds_each_websocket_url_as_documented() -> None:
    for mode in PAGE_MODES:
        assert f'"{mode}"' in APP_JS
    assert "`ws://${location.hostname}:${port}${path}`" in APP_JS
    assert "`${scheme}://${location.hostname}:${port}${path}`" in APP_JS
    assert "`${scheme}://${location.host}${path}`" in APP_JS
    assert 'get("ws")' in APP_JS  # the ?ws=<mode> override
    assert "history.pushState" in APP_JS


# --- small helpers -----------------------------------------------------------------------


@pytest.mark.parametrize("code", [1000, 1001, 1003, 1007, 1011, 1014, 3000, 4000, 4999])
def test_sendable_close_codes(code: int) -> None:
    assert close_code_problem(code) is None


@pytest.mark.parametrize("code", [999, 1004, 1005, 1006, 1015, 2000, 2999, 5000, True, "1000"])
def test_unsendable_close_codes(code: object) -> None:
    assert close_code_problem(code) is not None


def test_traffic_records_and_clears() -> None:
    traffic = Traffic()
    request = RecordedRequest(
        port="http",
        method="GET",
        path="/",
        query="",
        headers=header_pairs([(b"Host", b"cemm"), (b"X-A", b"1"), (b"x-a", b"2")]),
        client="127.0.0.1:5",
        websocket=False,
    )
    traffic.record(request)
    assert traffic.request_count == 1
    assert request.header("X-A") == "1"
    assert request.header("missing") is None
    assert request.headers == (("host", "cemm"), ("x-a", "1"), ("x-a", "2"))
    traffic.clear()
    assert traffic.request_count == 0
    assert not traffic.requests


# --- command line ------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sim")
    add_arguments(parser)
    return parser


def test_arguments_default_to_the_config_defaults() -> None:
    config = config_from_args(_parser().parse_args([]))
    assert config == SimulatorConfig()


def test_arguments_reach_the_config() -> None:
    args = _parser().parse_args(
        [
            "--host", "::1", "--http-port", "0", "--ws-port", "0", "--mac", "aa-bb-cc-dd-ee-ff",
            "--clock-skew", "-90.5", "--page-ws-port", "443", "--page-mode", "protocol-aware",
            "--ws-path", "/live", "--interval", "0.25",
        ]
    )  # fmt: skip
    config = config_from_args(args)
    assert config == SimulatorConfig(
        host="::1",
        http_port=0,
        ws_port=0,
        mac="AA:BB:CC:DD:EE:FF",
        clock_skew=-90.5,
        page_ws_port=443,
        page_mode="protocol-aware",
        ws_path="/live",
        interval=0.25,
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--mac", "80:1F"], "not a MAC address; expected six hex pairs"),
        (["--http-port", "http"], "not a port number"),
        (["--ws-port", "65536"], "out of range"),
        (["--page-ws-port", "0"], "cannot dial port 0"),
        (["--clock-skew", "soon"], "not a number of seconds"),
        (["--interval", "0"], "more than 0"),
        (["--ws-path", "ws"], "must start with '/'"),
        (["--page-mode", "magic"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_with_a_clear_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        _parser().parse_args(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


# --- the simulator stands alone ----------------------------------------------------------


def test_simulator_imports_nothing_else_from_gateway() -> None:
    offenders = []
    for source in SIMULATOR_DIR.rglob("*.py"):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if node.level == 0 else ["(relative)"]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name == "gateway" or (
                    name.startswith("gateway.") and not name.startswith("gateway.simulator")
                ):
                    offenders.append(f"{source.name}: {name}")
    assert offenders == []


def test_importing_the_simulator_loads_no_other_gateway_module() -> None:
    code = (
        "import sys, gateway.simulator\n"
        "print(sorted(m for m in sys.modules if m.startswith('gateway')"
        " and not m.startswith('gateway.simulator')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=SIMULATOR_DIR.parents[1],
        check=True,
    )
    assert result.stdout.strip() == "['gateway']"
