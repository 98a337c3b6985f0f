"""Schemathesis against the admin API's OpenAPI document, logged in as an admin: every
check it has (no 5xx, status codes, content types, headers and bodies as documented -
the 422 refusals of invalid input in the API's own error shape among them -, invalid
input refused, authentication enforced, 405 for undeclared methods, ...).

Two runs, so that nothing has to be left out:

1. With the login session (cookie + ``X-CSRF-Token``): every operation except the two
   that end sessions - ``DELETE /api/sessions/{session_id}`` and ``DELETE
   /api/users/{name}/sessions`` - because schemathesis feeds identifiers it read from
   earlier answers (``GET /api/sessions``, ``GET /api/users``) into later requests, and
   ending the run's own session would turn the rest of the run into 401s. (Disabling,
   demoting or removing one's own account is refused by the service layer, so those
   operations stay in.)
2. With an admin API token, which no session operation can end: those two operations,
   plus the two listings that supply them real identifiers.

Bounded: a fixed seed, ``--max-examples`` per operation, and a subprocess timeout; both
runs together take about a minute on the project's machine.

One setting differs from schemathesis's defaults: ``positive_data_acceptance`` also
accepts 400. A schema cannot state every rule - "192.168.1.5/24 has host bits set", "the
password contains the user name" - and the API answers those with 400 and the reason.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.admin import USER_PASSWORD, add_user, admin_gateway, auth_config, logged_in

SEED = 20261124
MAX_EXAMPLES = 15
SESSION_ENDING = (
    "sessions_revoke_api_sessions__session_id__delete",
    "users_revoke_sessions_api_users__name__sessions_delete",
)
THEIR_SOURCES = ("sessions_list_api_sessions_get", "users_list_api_users_get")
POSITIVE_STATUSES = '["2xx", "400", "401", "403", "404", "409"]'


def _run(directory: Path, *, schema: Path, base_url: str, auth: str, operations: list[str]) -> dict:
    config = directory / "schemathesis.toml"
    config.write_text(
        f"[checks.positive_data_acceptance]\nexpected-statuses = {POSITIVE_STATUSES}\n\n{auth}"
    )
    report = directory / "report.json"
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "run",
        str(schema),
        "--url",
        base_url,
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "4",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        *operations,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=150, cwd=directory)
    (directory / "output.txt").write_text(result.stdout + result.stderr)
    assert report.exists(), result.stdout + result.stderr
    found = json.loads(report.read_text())
    assert found["exit_code"] == 0 and not found["failures"] and not found["errors"], result.stdout[
        -6000:
    ]
    return found


def test_the_admin_api_keeps_to_its_openapi_document(tmp_path: Path) -> None:
    admin_name = f"fuzz-admin-{secrets.token_hex(4)}"  # a name no generated value will hit
    extra = auth_config(admin=admin_name, ban_after=3)
    with admin_gateway(tmp_path / "gw", extra=extra) as env:
        # Some real data for the operations to find: a user with a session, a ban, a token.
        add_user(env.config, "viewer")
        add_user(env.config, "mallory")
        login = env.config.url("/.gateway/api/login")
        assert httpx.post(login, json={"username": "viewer", "password": USER_PASSWORD}).is_success
        for _ in range(3):
            httpx.post(login, json={"username": "mallory", "password": "wrong password!"})
        base = env.admin_url("").rstrip("/")
        with logged_in(base, admin_name) as admin:
            assert admin.get("/api/bans").json(), "expected a ban to fuzz with"
            assert admin.post("/api/tokens", json={"user": "viewer", "name": "x"}).is_success
            schema = tmp_path / "openapi.json"
            schema.write_text(admin.get("/openapi.json").text)
            cookie = admin.cookies["cemm_session"]
            csrf = admin.headers["X-CSRF-Token"]
            first_dir = tmp_path / "session-run"
            first_dir.mkdir()
            first = _run(
                first_dir,
                schema=schema,
                base_url=base,
                auth=f'[auth.openapi.session]\napi_key = "{cookie}"\n\n'
                f'[auth.openapi.csrf]\napi_key = "{csrf}"\n',
                operations=[f"--exclude-operation-id={op}" for op in SESSION_ENDING],
            )
            # The run's session survived it: the 401s it saw were the probes it made.
            assert admin.get("/api/me").status_code == 200
            token = admin.post("/api/tokens", json={"user": admin_name, "name": "fuzz"})
            assert token.status_code == 201
        second_dir = tmp_path / "token-run"
        second_dir.mkdir()
        second = _run(
            second_dir,
            schema=schema,
            base_url=base,
            auth=f'[auth.openapi.apiToken]\nbearer = "{token.json()["token"]}"\n',
            operations=[f"--include-operation-id={op}" for op in (*SESSION_ENDING, *THEIR_SOURCES)],
        )
        assert "Traceback" not in env.gateway.log()
    total = first["operations"]["total"]
    tested = first["operations"]["tested"] + len(SESSION_ENDING)
    assert tested == total, (first["operations"], second["operations"])
    print(
        f"\nschemathesis: {first['test_cases']['generated']} + "
        f"{second['test_cases']['generated']} test cases, {tested}/{total} operations, "
        f"0 failures ({first['running_time']:.0f} s + {second['running_time']:.0f} s)"
    )
