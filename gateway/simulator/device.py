"""The simulated CEMM itself: its clock, its public API documents and its live readings.

Everything here is plain data and arithmetic, so the web and WebSocket front ends stay
thin and the shapes can be tested without sockets. The JSON shapes follow the vendor's
public API description (``/api/v1/public/cemm`` and ``/api/v1/public/meters``); the live
reading format is the simulator's own, since the real one is not documented.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import Any, Final

from gateway.simulator.config import SimulatorConfig
from gateway.simulator.traffic import Traffic

DEVICE_ID: Final = 24000293
FIRMWARE_VERSION: Final = "1.10.0"
MODULES: Final = ("webhooks", "smartmeter", "pulse", "shelly", "weather", "mqtt")

METERS: Final[list[dict[str, Any]]] = [
    {
        "id": 1,
        "key": "hoofdmeter",
        "label": "Hoofdmeter",
        "type": "electricity",
        "role": "grid-connection",
        "channels": [
            {
                "id": 1,
                "key": "electric_power_import",
                "label": "Vermogen afname",
                "unit": "W",
                "aggregation_method": "AVG",
            },
            {
                "id": 2,
                "key": "electric_power_export",
                "label": "Vermogen teruglevering",
                "unit": "W",
                "aggregation_method": "AVG",
            },
            {
                "id": 3,
                "key": "electric_energy_import",
                "label": "Energie afname",
                "unit": "kWh",
                "aggregation_method": "DELTA",
            },
            {
                "id": 4,
                "key": "electric_energy_export",
                "label": "Energie teruglevering",
                "unit": "kWh",
                "aggregation_method": "DELTA",
            },
            {
                "id": 5,
                "key": "voltage_l1",
                "label": "Spanning L1",
                "unit": "V",
                "aggregation_method": "AVG",
            },
        ],
    },
    {
        "id": 2,
        "key": "zonnepanelen",
        "label": "Zonnepanelen",
        "type": "electricity",
        "role": "production",
        "channels": [
            {
                "id": 6,
                "key": "electric_power_production",
                "label": "Vermogen opwek",
                "unit": "W",
                "aggregation_method": "AVG",
            },
        ],
    },
    {
        "id": 3,
        "key": "gasmeter",
        "label": "Gasmeter",
        "type": "gas",
        "role": "grid-connection",
        "channels": [
            {
                "id": 7,
                "key": "gas_volume_import",
                "label": "Gasverbruik",
                "unit": "m³",
                "aggregation_method": "DELTA",
            },
        ],
    },
]


def meters_document() -> dict[str, Any]:
    """The body of ``GET /api/v1/public/meters``."""
    return {"meters": METERS}


def live_channels(device_time: float) -> dict[str, float]:
    """Instantaneous values of the power channels at ``device_time`` (epoch seconds).

    Smooth, deterministic curves rather than random numbers: a base load with appliance
    cycles, and solar production that follows the sun over the day (UTC, roughly the
    Netherlands), so the demo looks alive and tests can recompute any value.
    """
    consumption = 420 + 170 * math.sin(device_time / 23) + 55 * math.sin(device_time / 3.7)
    hour = (device_time % 86400) / 3600
    sun = max(0.0, math.sin(math.pi * (hour - 5) / 14)) if 5 <= hour <= 19 else 0.0
    production = 1800 * sun * (0.85 + 0.15 * math.sin(device_time / 41))
    net = consumption - production
    return {
        "electric_power_import": round(max(net, 0.0), 1),
        "electric_power_export": round(max(-net, 0.0), 1),
        "electric_power_production": round(production, 1),
        "voltage_l1": round(230 + 2.5 * math.sin(device_time / 11), 1),
    }


def reading_message(seq: int, device_time: float) -> dict[str, Any]:
    """One live reading as pushed on the WebSocket; ``power_w`` is net (negative = export)."""
    channels = live_channels(device_time)
    power = channels["electric_power_import"] - channels["electric_power_export"]
    return {
        "type": "reading",
        "seq": seq,
        "time": int(device_time),
        "power_w": round(power, 1),
        "channels": channels,
    }


@dataclass
class Device:
    """The running device's state shared by its web port and its WebSocket port."""

    config: SimulatorConfig
    http_port: int
    """The bound web port (differs from ``config.http_port`` when that was 0)."""
    ws_port: int
    """The bound WebSocket port (differs from ``config.ws_port`` when that was 0)."""
    traffic: Traffic = field(default_factory=Traffic)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the simulator stops, so long-running responses end instead of being cut."""

    def now(self) -> float:
        """The device clock: the real clock plus the configured skew."""
        return self.config.clock() + self.config.clock_skew

    @property
    def page_ws_port(self) -> int:
        """The port the page's script dials for live data."""
        if self.config.page_ws_port is not None:
            return self.config.page_ws_port
        return self.ws_port

    def info_document(self, local_ip: str) -> dict[str, Any]:
        """The body of ``GET /api/v1/public/cemm``; ``local_ip`` is where the request arrived."""
        return {
            "id": DEVICE_ID,
            "name": "Development",
            "icon": "building",
            "icon_color": "#CF2D27",
            "mac": self.config.mac,
            "local_ip": local_ip,
            "version": FIRMWARE_VERSION,
            "timezone": "Europe/Amsterdam",
            "time": int(self.now()),
            "modules": list(MODULES),
            "currency": "EUR",
        }

    def reading(self, seq: int) -> dict[str, Any]:
        return reading_message(seq, self.now())
