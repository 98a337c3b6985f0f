"""docs/home-assistant.md's examples, exercised against the CEMM simulator behind a gateway.

The test reads the page itself: it runs the page's ``cemm-gateway`` commands (a user and a
read-only token for Home Assistant), loads its ``secrets.yaml`` and ``configuration.yaml``
blocks, points their URLs at the gateway under test, and then does what Home Assistant's
RESTful integration does with them: one GET per resource with its headers (``!secret``
resolved), then every sensor's ``value_template`` rendered against the JSON answer and its
``json_attributes`` looked up. A changed URL, header, JSON key or template in the page
fails here.
"""

from __future__ import annotations

import datetime as dt
import re
import shlex
from collections.abc import Iterator
from typing import Any

import httpx
import jinja2
import pytest
from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.nodes import ScalarNode

from tests.support.gateway import (
    ROOT,
    GatewayConfig,
    GatewayProcess,
    SimulatorThread,
    cli,
    wait_for,
)

DOC = ROOT / "docs" / "home-assistant.md"
DOC_GATEWAY = "http://192.168.2.10"  # the gateway's address in the page's examples


class Secret(str):
    """A ``!secret NAME`` reference, resolved from secrets.yaml."""


def _secret(constructor: SafeConstructor, node: ScalarNode) -> Secret:
    return Secret(constructor.construct_scalar(node))


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", DOC.read_text(), flags=re.S | re.M)


def _yaml_block(marker: str) -> Any:
    (block,) = [b for b in _blocks("yaml") if b.startswith(f"# {marker}")]
    yaml = YAML(typ="safe", pure=True)
    yaml.constructor.add_constructor("!secret", _secret)
    return yaml.load(block)


def _commands() -> list[list[str]]:
    """The page's ``cemm-gateway ...`` command lines, as arguments (comments dropped)."""
    found = []
    for block in _blocks("sh"):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["cemm-gateway"]:
                found.append(words[1:])
    return found


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayConfig]:
    simulator = SimulatorThread()
    # No trusted networks: Home Assistant gets in with its token only.
    config = GatewayConfig(
        tmp_path_factory.mktemp("home-assistant"),
        upstream_http_port=simulator.http_port,
        upstream_ws_port=simulator.ws_port,
    )
    process = GatewayProcess(config)
    try:
        yield config
    finally:
        process.close()
        simulator.close()


@pytest.fixture(scope="module")
def token(gateway: GatewayConfig) -> str:
    commands = _commands()
    assert [c[:2] for c in commands] == [["user", "add"], ["token", "add"]]
    user_add, token_add = commands
    made = cli(*user_add, "--password-stdin", config=gateway.path, input="unused-pw-4711\n")
    assert made.returncode == 0, made.stderr
    assert "--read-only" in token_add
    assert token_add[token_add.index("--scope") + 1] == "/api/v1/public/"
    made = cli(*token_add, config=gateway.path)
    assert made.returncode == 0, made.stderr
    printed = made.stdout.strip()
    assert printed.startswith("cgw_")
    return printed


def _url(gateway: GatewayConfig, url: str) -> str:
    for port, kind in ((":8443", "admin"), ("", "http")):
        if url.startswith(DOC_GATEWAY + port + "/"):
            return gateway.url(url.removeprefix(DOC_GATEWAY + port), port=kind)
    raise AssertionError(f"{url} does not point at the page's gateway {DOC_GATEWAY}")


def _headers(headers: dict[str, str], secrets: dict[str, str]) -> dict[str, str]:
    return {k: secrets[v] if isinstance(v, Secret) else v for k, v in headers.items()}


def _as_datetime(value: Any) -> dt.datetime:
    """Home Assistant's ``as_datetime`` filter, for the numbers the page gives it."""
    return dt.datetime.fromtimestamp(float(value), tz=dt.UTC)


TEMPLATES = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
TEMPLATES.filters["as_datetime"] = _as_datetime


def _render(template: str, value_json: Any) -> str:
    return TEMPLATES.from_string(template).render(value_json=value_json)


def _json_path(document: Any, path: str) -> Any:
    """The ``$`` and ``$.a.b`` forms of JSONPath that ``json_attributes_path`` uses here."""
    assert path == "$" or path.startswith("$."), path
    for key in path.split(".")[1:]:
        document = document[key]
    return document


def test_the_examples_work_against_the_simulator(gateway: GatewayConfig, token: str) -> None:
    secrets = _yaml_block("secrets.yaml")
    (name,) = secrets
    assert str(secrets[name]).startswith("Bearer cgw_")
    secrets[name] = f"Bearer {token}"
    resources = _yaml_block("configuration.yaml")["rest"]
    assert len(resources) == 3

    def fetch(resource: dict[str, Any]) -> httpx.Response:
        return httpx.get(
            _url(gateway, resource["resource"]),
            headers=_headers(resource.get("headers", {}), secrets),
            timeout=10,
        )

    # The CLI wrote the token; the running gateway admits it on its next reload.
    wait_for(lambda: fetch(resources[0]).status_code == 200, "the gateway admits the token")
    # /healthz reports the CEMM once the upstream monitor has checked it.
    health = resources[-1]
    wait_for(lambda: fetch(health).json()["cemm"]["web"] == "up", "the CEMM is checked")

    rendered: dict[str, str] = {}
    for resource in resources:
        answer = fetch(resource)
        assert answer.status_code == 200, (resource["resource"], answer.text)
        value_json = answer.json()
        for kind in ("sensor", "binary_sensor"):
            for sensor in resource.get(kind, []):
                value = _render(sensor["value_template"], value_json).strip()
                assert value and value != "None", sensor["name"]
                rendered[sensor["name"]] = value
                if kind == "binary_sensor":
                    assert value in ("True", "False"), sensor["name"]
                attributes = _json_path(value_json, sensor.get("json_attributes_path", "$"))
                for attribute in sensor.get("json_attributes", []):
                    assert attribute in attributes, (sensor["name"], attribute)

    assert rendered["CEMM gateway"] == "True"
    assert rendered["CEMM reachable"] == "True"
    assert int(rendered["CEMM meters"]) > 0
    clock = dt.datetime.fromisoformat(rendered["CEMM clock"])
    assert abs((clock - dt.datetime.now(dt.UTC)).total_seconds()) < 300
    assert re.fullmatch(r"[\w.\-]+", rendered["CEMM firmware"])


def test_without_the_token_home_assistant_gets_401(gateway: GatewayConfig, token: str) -> None:
    """What the page says a missing or revoked token looks like; /healthz needs none."""
    resources = _yaml_block("configuration.yaml")["rest"]
    for resource in resources:
        answer = httpx.get(_url(gateway, resource["resource"]), timeout=10)
        expected = 401 if "headers" in resource else 200
        assert answer.status_code == expected, (resource["resource"], answer.status_code)


def test_the_token_reaches_nothing_outside_the_public_api(
    gateway: GatewayConfig, token: str
) -> None:
    """The page's token is read-only and scoped: the CEMM's pages, a write and a path that
    only starts like the scope are refused."""
    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.get(gateway.url("/api/v1/public/cemm"), headers=bearer, timeout=10).is_success
    for method, path in (("GET", "/"), ("GET", "/api/v1/publicx"), ("POST", "/api/v1/public/cemm")):
        answer = httpx.request(method, gateway.url(path), headers=bearer, timeout=10)
        assert answer.status_code == 403, (method, path, answer.status_code)
