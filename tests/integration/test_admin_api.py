"""The admin JSON API against a real gateway process: credentials, CSRF and Origin rules,
every operation, the self lock-out rule, and the audit trail each change leaves."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sqlite3
import time
from collections.abc import Iterator

import httpx
import pytest

from gateway.version import version
from tests.support.admin import (
    ADMIN,
    LOOPBACK_ENTRY,
    USER_PASSWORD,
    AdminEnv,
    add_user,
    admin_gateway,
    auth_config,
    logged_in,
)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminEnv]:
    with admin_gateway(tmp_path_factory.mktemp("admin-api"), extra=auth_config(ban_after=3)) as e:
        yield e


@pytest.fixture
def admin(env: AdminEnv) -> Iterator[httpx.Client]:
    with logged_in(env.admin_url("")) as client:
        yield client


def _entry(admin: httpx.Client, network: str) -> dict:
    entries = admin.get("/api/allowlist").json()["entries"]
    return next(e for e in entries if e["network"] == network)


def _last_audit(admin: httpx.Client, event: str) -> dict:
    return admin.get("/api/audit", params={"event": event, "limit": 1}).json()["entries"][0]


# -- who may call it --------------------------------------------------------------------
def test_without_a_login_the_api_says_401_and_pages_go_to_the_login(env: AdminEnv) -> None:
    with httpx.Client(base_url=env.admin_url(""), timeout=10) as anonymous:
        for path in ("/api/users", "/openapi.json", "/api/nothing-here"):
            response = anonymous.get(path)
            assert response.status_code == 401, path
            assert response.json()["error"] == "unauthorized"
        page = anonymous.get("/users/anna?x=1")
        assert page.status_code == 303
        assert page.headers["location"] == "/.gateway/login?next=%2Fusers%2Fanna%3Fx%3D1"
        assert anonymous.get("/healthz").status_code == 200
        assert anonymous.get("/.gateway/login").status_code == 200


def test_state_changes_need_the_csrf_token(env: AdminEnv, admin: httpx.Client) -> None:
    body = {"network": "198.51.100.0/24"}
    token = admin.headers.pop("X-CSRF-Token")
    refused = admin.post("/api/allowlist", json=body)
    assert refused.status_code == 403
    assert refused.json()["error"] == "csrf"
    assert (
        admin.post("/api/allowlist", json=body, headers={"X-CSRF-Token": "x" * 43}).status_code
        == 403
    )
    # Reading needs no token; the session's token is answered by /api/me.
    assert admin.get("/api/me").json()["csrf_token"] == token
    admin.headers["X-CSRF-Token"] = token
    assert admin.post("/api/allowlist", json=body).status_code == 201
    assert (
        admin.delete(f"/api/allowlist/{_entry(admin, '198.51.100.0/24')['id']}").status_code == 204
    )


def test_a_foreign_origin_is_refused_even_with_the_token(
    env: AdminEnv, admin: httpx.Client
) -> None:
    body = {"network": "198.51.100.0/24"}
    foreign = admin.post("/api/allowlist", json=body, headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403
    assert foreign.json()["error"] == "foreign_origin"
    # The CEMM's own pages are on the same host, another port: "same-site", refused too.
    cemm_page = {"Origin": env.config.url("").rstrip("/"), "Sec-Fetch-Site": "same-site"}
    assert admin.post("/api/allowlist", json=body, headers=cemm_page).status_code == 403
    own = env.admin_url("").rstrip("/")
    same = {"Origin": own, "Sec-Fetch-Site": "same-origin"}
    assert admin.post("/api/allowlist", json=body, headers=same).status_code == 201
    assert (
        admin.delete(f"/api/allowlist/{_entry(admin, '198.51.100.0/24')['id']}").status_code == 204
    )
    # "null" (what a page with referrer policy no-referrer sends) is left to the CSRF token.
    assert admin.post("/api/allowlist", json=body, headers={"Origin": "null"}).status_code == 201
    assert (
        admin.delete(f"/api/allowlist/{_entry(admin, '198.51.100.0/24')['id']}").status_code == 204
    )


def test_every_answer_carries_the_security_headers(env: AdminEnv, admin: httpx.Client) -> None:
    for path in ("/", "/allowlist", "/api/me", "/openapi.json", "/static/admin.js"):
        headers = admin.get(path).headers
        csp = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, path
        assert "unsafe-inline" not in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"


def test_undeclared_methods_get_405_with_every_allowed_method(admin: httpx.Client) -> None:
    response = admin.put("/api/users", json={})
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} >= {"GET", "POST"}


# -- allowlist --------------------------------------------------------------------------
def test_allowlist_add_list_remove(env: AdminEnv, admin: httpx.Client) -> None:
    added = admin.post(
        "/api/allowlist", json={"network": "2001:DB8::/48", "label": "office", "expires": "1d"}
    )
    assert added.status_code == 201, added.text
    entry = added.json()
    assert entry["network"] == "2001:db8::/48"
    assert entry["label"] == "office"
    assert 86000 < entry["expires_at"] - time.time() <= 86400
    assert entry["created_by"] == ADMIN and entry["hits"] == 0 and not entry["admits_you"]
    listing = admin.get("/api/allowlist").json()
    assert listing["your_address"] == "127.0.0.1"
    assert listing["default_networks"] == ["10.0.0.0/8"]
    assert _entry(admin, LOOPBACK_ENTRY)["admits_you"]
    audit = _last_audit(admin, "allowlist.add")
    assert audit["actor"] == ADMIN and audit["client_address"] == "127.0.0.1"

    assert admin.delete(f"/api/allowlist/{entry['id']}").status_code == 204
    missing = admin.delete(f"/api/allowlist/{entry['id']}")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert _last_audit(admin, "allowlist.remove")["detail"] == {"network": "2001:db8::/48"}


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"network": "10.0.0.300/24"}, 400, "not an IPv4 or IPv6 network"),
        ({"network": "192.168.1.5/24"}, 400, "did you mean 192.168.1.0/24"),
        ({"network": "192.0.2.0/24", "expires": "soon"}, 422, "body.expires: String should"),
        ({"network": "192.0.2.0/24", "extra": 1}, 422, "body.extra: Extra inputs are not"),
        ({"network": "192.0.2.0/24", "label": "bell\x07"}, 422, "body.label: String should"),
    ],
)
def test_invalid_entries_are_refused_with_a_reason(
    admin: httpx.Client, body: dict, status: int, words: str
) -> None:
    response = admin.post("/api/allowlist", json=body)
    assert response.status_code == status
    assert words in response.json()["detail"]


def test_a_request_that_does_not_fit_the_schema_is_refused_in_the_apis_own_shape(
    admin: httpx.Client,
) -> None:
    refused = admin.post(
        "/api/users", json={"name": "-nope", "password": "short", "colour": "blue"}
    )
    assert refused.status_code == 422
    body = refused.json()
    assert body["error"] == "invalid_request"
    assert [e["location"] for e in body["errors"]] == ["body.name", "body.password", "body.colour"]
    assert body["detail"] == "; ".join(f"{e['location']}: {e['message']}" for e in body["errors"])
    assert "body.password: String should have at least 10 characters" in body["detail"]
    assert "short" not in refused.text and "blue" not in refused.text  # values not repeated

    # Query and path parameters, a validator's own sentence, and a body that is not JSON.
    assert admin.get("/api/audit", params={"limit": 0}).json()["errors"] == [
        {"location": "query.limit", "message": "Input should be greater than or equal to 1"}
    ]
    assert admin.get("/api/users/-x").json()["detail"].startswith("path.name: String should")
    assert admin.get("/api/audit.csv", params={"since": "x"}).json()["error"] == "invalid_request"
    nul = admin.post("/api/users/admin/password", json={"password": "ten chars \x00 and more"})
    assert nul.json()["detail"].startswith("body.password: String should match pattern")
    broken = admin.post(
        "/api/allowlist", content=b'{"network": ', headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 422
    assert broken.json()["detail"].startswith("body: not valid JSON at character 12")


def test_the_document_describes_the_422_answers(admin: httpx.Client) -> None:
    document = admin.get("/openapi.json").json()
    assert document["info"]["version"] == version()  # the package's, as --version prints
    assert "HTTPValidationError" not in document["components"]["schemas"]
    shape = document["components"]["schemas"]["ValidationErrorOut"]
    assert set(shape["required"]) == {"error", "detail", "errors"}
    documented = {}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            answer = operation["responses"].get("422")
            documented[f"{method.upper()} {path}"] = answer and answer["content"]
    assert documented["POST /api/users"] == documented["GET /api/audit.csv"]
    assert documented["POST /api/users"] == {
        "application/json": {"schema": {"$ref": "#/components/schemas/ValidationErrorOut"}}
    }
    # An operation that takes no input cannot answer 422 and does not say it would.
    assert documented["GET /api/me"] is None and documented["GET /api/bans"] is None
    assert all(documented[op] for op in documented if "{" in op or op.startswith("POST"))


def test_cutting_off_my_own_address_needs_confirmation(env: AdminEnv, admin: httpx.Client) -> None:
    loopback = _entry(admin, LOOPBACK_ENTRY)
    refused = admin.delete(f"/api/allowlist/{loopback['id']}")
    assert refused.status_code == 409
    body = refused.json()
    assert body["error"] == "self_lockout"
    assert body["address"] == "127.0.0.1" and body["admitted_until"] is None
    assert "127.0.0.1 could no longer reach" in body["detail"]
    assert _entry(admin, LOOPBACK_ENTRY)["id"] == loopback["id"]

    # Shortening its expiry would cut me off later: the same rule, and then confirmed.
    shorter = {"network": LOOPBACK_ENTRY, "label": "loopback", "expires": "30d"}
    refused = admin.post("/api/allowlist", json=shorter)
    assert refused.status_code == 409 and refused.json()["admitted_until"] > time.time()
    assert (
        admin.post("/api/allowlist", json={**shorter, "confirm_lockout": True}).status_code == 201
    )
    assert _last_audit(admin, "allowlist.update")["detail"]["own_address_cut_off"] == "127.0.0.1"
    forever = {"network": LOOPBACK_ENTRY, "label": "loopback", "expires": "never"}
    assert admin.post("/api/allowlist", json=forever).status_code == 201
    # The web port still admits loopback.
    assert httpx.get(env.config.url("/.gateway/login"), timeout=5).status_code == 200


# -- users ------------------------------------------------------------------------------
def _json_login(env: AdminEnv, name: str, password: str) -> httpx.Response:
    return httpx.post(
        env.config.url("/.gateway/api/login"),
        json={"username": name, "password": password},
        timeout=10,
    )


def test_user_lifecycle(env: AdminEnv, admin: httpx.Client) -> None:
    added = admin.post("/api/users", json={"name": "dora"})
    assert added.status_code == 201, added.text
    generated = added.json()["generated_password"]
    assert added.json()["user"] == {
        "name": "dora",
        "role": "user",
        "disabled": False,
        "email": None,
        "oidc_managed": False,
        "totp_enabled": False,
        "has_password": True,
        "created_at": added.json()["user"]["created_at"],
    }
    assert _json_login(env, "dora", generated).status_code == 200
    assert admin.post("/api/users", json={"name": "DORA"}).json()["error"] == "exists"
    short = admin.post("/api/users", json={"name": "erin", "password": "short"})
    assert short.status_code == 422

    assert admin.patch("/api/users/dora", json={"role": "admin"}).json()["role"] == "admin"
    disabled = admin.patch("/api/users/dora", json={"disabled": True, "role": "user"})
    assert disabled.json()["disabled"] is True and disabled.json()["role"] == "user"
    assert _json_login(env, "dora", generated).status_code == 401
    assert admin.patch("/api/users/dora", json={"disabled": False}).status_code == 200

    new_password = "purple-elephant-skates"
    reset = admin.post("/api/users/dora/password", json={"password": new_password})
    assert reset.json() == {"generated_password": None}
    assert _json_login(env, "dora", new_password).status_code == 200
    assert admin.delete("/api/users/dora/sessions").json() == {"ended": 1}
    assert admin.post("/api/users/dora/reset-second-factor").status_code == 204
    assert _last_audit(admin, "user.totp_reset")["detail"] == {"user": "dora"}

    assert admin.delete("/api/users/dora").status_code == 204
    assert admin.get("/api/users/dora").status_code == 404
    assert _last_audit(admin, "user.remove")["client_address"] == "127.0.0.1"


def test_nobody_disables_demotes_or_removes_their_own_account(
    env: AdminEnv, admin: httpx.Client
) -> None:
    # Even with a second admin around (so the last-admin rule does not apply).
    add_user(env.config, "lee", role="admin")
    for response in (
        admin.patch(f"/api/users/{ADMIN}", json={"role": "user"}),
        admin.patch(f"/api/users/{ADMIN}", json={"disabled": True}),
        admin.delete(f"/api/users/{ADMIN}"),
    ):
        assert response.status_code == 409
        assert response.json()["error"] == "own_account"
        assert "another admin can" in response.json()["detail"]
    assert admin.get("/api/me").json()["role"] == "admin"
    # Another admin may.
    with logged_in(env.admin_url(""), "lee", USER_PASSWORD) as lee:
        assert lee.patch(f"/api/users/{ADMIN}", json={"disabled": True}).status_code == 200
        assert admin.get("/api/me").status_code == 401  # the session ended with it
        assert lee.patch(f"/api/users/{ADMIN}", json={"disabled": False}).status_code == 200
        assert lee.delete("/api/users/lee").json()["error"] == "own_account"


def test_resetting_my_own_password_keeps_my_session(admin: httpx.Client) -> None:
    from tests.support.admin import ADMIN_PASSWORD

    response = admin.post(f"/api/users/{ADMIN}/password", json={"password": ADMIN_PASSWORD})
    assert response.status_code == 200
    assert admin.get("/api/me").status_code == 200


# -- API tokens -------------------------------------------------------------------------
def test_tokens_for_any_user(env: AdminEnv, admin: httpx.Client) -> None:
    add_user(env.config, "frank")
    created = admin.post(
        "/api/tokens", json={"user": "frank", "name": "home assistant", "expires": "7d"}
    )
    assert created.status_code == 201, created.text
    token, record = created.json()["token"], created.json()["record"]
    assert token.startswith("cgw_") and record["user"] == "frank" and record["active"]
    assert token not in admin.get("/api/tokens").text  # shown once, never listed
    cemm = env.config.url("/api/v1/public/cemm")
    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.get(cemm, headers=bearer, timeout=5).status_code == 200
    # A user's token is no key to the admin app.
    assert httpx.get(env.admin_url("/api/me"), headers=bearer, timeout=5).status_code == 403

    assert admin.delete(f"/api/tokens/{record['id']}").status_code == 204
    assert httpx.get(cemm, headers=bearer, timeout=5).status_code == 401
    assert admin.delete(f"/api/tokens/{record['id']}").json()["error"] == "already_revoked"
    assert admin.delete("/api/tokens/nosuchtoken").status_code == 404
    assert admin.post("/api/tokens", json={"user": "nobody", "name": "x"}).status_code == 404


def test_an_admin_token_works_without_csrf_and_a_read_only_one_only_reads(
    env: AdminEnv, admin: httpx.Client
) -> None:
    full = admin.post("/api/tokens", json={"user": ADMIN, "name": "script"}).json()["token"]
    read = admin.post(
        "/api/tokens", json={"user": ADMIN, "name": "monitor", "read_only": True}
    ).json()["token"]
    with httpx.Client(base_url=env.admin_url(""), timeout=10) as script:
        script.headers["Authorization"] = f"Bearer {full}"
        assert script.get("/api/me").json()["via"] == "token"
        added = script.post("/api/allowlist", json={"network": "192.0.2.0/24"})
        assert added.status_code == 201
        assert script.delete(f"/api/allowlist/{added.json()['id']}").status_code == 204
        script.headers["Authorization"] = f"Bearer {read}"
        assert script.get("/api/status").status_code == 200
        refused = script.post("/api/allowlist", json={"network": "192.0.2.0/24"})
        assert refused.status_code == 403 and refused.json()["error"] == "read_only_token"
        script.headers["Authorization"] = "Bearer cgw_nonsense"
        assert script.get("/api/me").status_code == 401


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"])
def test_a_read_only_token_changes_nothing_whatever_the_method(
    env: AdminEnv, admin: httpx.Client, method: str
) -> None:
    """Every method on paths that exist for it (and PUT, for which none does): a state
    change is refused with ``read_only_token`` before any route runs, and nothing changed.
    A read-only token may use GET and HEAD (FastAPI answers HEAD with 405 here) and nothing
    else, OPTIONS included: the same rule as on the CEMM's ports
    (``gateway/policy/identity.py::READ_ONLY_METHODS``)."""
    network = f"198.51.100.{len(method)}/32"
    added = admin.post("/api/allowlist", json={"network": network})
    assert added.status_code == 201, added.text
    entry_id = added.json()["id"]
    read = admin.post(
        "/api/tokens", json={"user": ADMIN, "name": f"ro-{method}", "read_only": True}
    ).json()["token"]
    target, body = {
        "GET": ("/api/allowlist", None),
        "HEAD": ("/api/allowlist", None),
        "OPTIONS": ("/api/allowlist", None),
        "POST": ("/api/allowlist", {"network": "192.0.2.0/24"}),
        "PUT": (f"/api/allowlist/{entry_id}", {"network": "192.0.2.0/24"}),
        "PATCH": (f"/api/users/{ADMIN}", {"disabled": True}),
        "DELETE": (f"/api/allowlist/{entry_id}", None),
    }[method]

    def newest_audit() -> dict:
        answer = admin.get("/api/audit", params={"limit": 1})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def allowlist() -> dict:
        # Without the hit counters, which the gateway writes in the background as the
        # admin's own requests are counted: what the token could have changed, nothing else.
        listed = admin.get("/api/allowlist").json()
        for entry in listed["entries"]:
            entry.pop("hits"), entry.pop("last_hit_at")
        return listed

    before = allowlist()
    audit_before = newest_audit()
    with httpx.Client(base_url=env.admin_url(""), timeout=10) as script:
        answer = script.request(
            method, target, json=body, headers={"Authorization": f"Bearer {read}"}
        )
    if method in ("GET", "HEAD"):
        assert answer.status_code in (200, 405), answer.text
        assert answer.status_code == 200 or method != "GET"
    else:
        assert answer.status_code == 403, answer.text
        assert answer.json()["error"] == "read_only_token"
    assert allowlist() == before
    assert newest_audit() == audit_before
    assert admin.get(f"/api/users/{ADMIN}").json()["disabled"] is False
    assert admin.delete(f"/api/allowlist/{entry_id}").status_code == 204


# -- sessions ---------------------------------------------------------------------------
def test_listing_and_revoking_sessions(env: AdminEnv, admin: httpx.Client) -> None:
    add_user(env.config, "gina")
    gina = httpx.Client(timeout=10, headers={"User-Agent": "gina-phone/1.0"})
    login = gina.post(
        env.config.url("/.gateway/api/login"), json={"username": "gina", "password": USER_PASSWORD}
    )
    assert login.status_code == 200
    assert gina.get(env.config.url("/api/v1/public/cemm")).status_code == 200
    listed = admin.get("/api/sessions", params={"user": "gina"}).json()
    assert [(s["user"], s["user_agent"], s["client_address"]) for s in listed] == [
        ("gina", "gina-phone/1.0", "127.0.0.1")
    ]
    mine = [s for s in admin.get("/api/sessions").json() if s["current"]]
    assert len(mine) == 1 and mine[0]["user"] == ADMIN

    assert admin.delete(f"/api/sessions/{listed[0]['id']}").status_code == 204
    assert gina.get(env.config.url("/api/v1/public/cemm")).status_code == 401
    assert admin.delete(f"/api/sessions/{listed[0]['id']}").status_code == 404
    assert admin.get("/api/sessions", params={"user": "nobody"}).status_code == 404
    gina.close()


# -- bans -------------------------------------------------------------------------------
def test_bans_are_listed_and_lifted(env: AdminEnv, admin: httpx.Client) -> None:
    add_user(env.config, "hank")
    for _ in range(3):
        assert _json_login(env, "hank", "wrong password!").status_code == 401
    assert _json_login(env, "hank", USER_PASSWORD).status_code == 429
    (ban,) = [b for b in admin.get("/api/bans").json() if b["target"] == "hank"]
    assert ban["kind"] == "user" and ban["until"] > time.time()
    dashboard = admin.get("/api/status").json()
    assert any(b["id"] == ban["id"] for b in dashboard["bans"])
    assert any(f["user"] == "hank" and f["count"] == 3 for f in dashboard["recent_login_failures"])

    assert admin.delete(f"/api/bans/{ban['id']}").status_code == 204
    assert admin.delete(f"/api/bans/{ban['id']}").status_code == 404
    assert _json_login(env, "hank", USER_PASSWORD).status_code == 200
    assert _last_audit(admin, "ban.lift")["detail"] == {"subject": "user:hank"}


# -- audit log --------------------------------------------------------------------------
def test_audit_filters_and_csv_export(env: AdminEnv, admin: httpx.Client) -> None:
    add_user(env.config, "ivy")
    start = time.time()
    assert admin.patch("/api/users/ivy", json={"role": "admin"}).status_code == 200
    assert admin.patch("/api/users/ivy", json={"role": "user"}).status_code == 200
    about_ivy = admin.get("/api/audit", params={"user": "ivy", "event": "user"}).json()
    assert [e["event"] for e in about_ivy["entries"]] == ["user.role", "user.role", "user.add"]
    since = dt.datetime.fromtimestamp(start).isoformat()  # naive: the gateway's local time
    recent = admin.get("/api/audit", params={"user": "ivy", "since": since}).json()["entries"]
    assert [e["detail"]["role"] for e in recent] == ["user", "admin"]
    assert admin.get("/api/audit", params={"since": "not a time"}).status_code == 422
    assert admin.get("/api/audit", params={"since": "0001-01-01T00:00:00"}).status_code == 400

    export = admin.get("/api/audit.csv", params={"user": "ivy", "event": "user.role"})
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    assert export.headers["content-disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [(r["actor"], r["event"], r["client_address"]) for r in rows] == [
        (ADMIN, "user.role", "127.0.0.1"),
        (ADMIN, "user.role", "127.0.0.1"),
    ]


def test_the_csv_export_holds_every_matching_entry(env: AdminEnv, admin: httpx.Client) -> None:
    # More entries than the JSON listing's cap, three to a time, written straight to the log.
    count, start = 10_050, time.time() - 3600
    conn = sqlite3.connect(env.config.data_dir / "gateway.db", timeout=10)
    with conn:
        conn.executemany(
            "INSERT INTO audit_log (at, actor, event, detail)"
            " VALUES (?, 'bulk-import', 'user.add', ?)",
            [(start + i // 3, json.dumps({"n": i})) for i in range(count)],
        )
    conn.close()

    export = admin.get("/api/audit.csv", params={"user": "bulk-import"})
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert int(export.headers["content-length"]) == len(export.content)
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [json.loads(row["detail"])["n"] for row in rows] == list(range(count))[::-1]
    newest = admin.get("/api/audit.csv", params={"user": "bulk-import", "limit": 4})
    assert [json.loads(r["detail"])["n"] for r in csv.DictReader(io.StringIO(newest.text))] == [
        10_049,
        10_048,
        10_047,
        10_046,
    ]
    # The JSON listing keeps its cap, and says that there is more.
    listing = admin.get("/api/audit", params={"user": "bulk-import", "limit": 10_000}).json()
    assert len(listing["entries"]) == 10_000 and listing["more"] is True
    assert admin.get("/api/audit", params={"limit": 10_001}).status_code == 422


def test_dashboard_counts(env: AdminEnv, admin: httpx.Client) -> None:
    status = admin.get("/api/status").json()
    assert any(s["current"] for s in status["sessions"])
    assert status["open_connections"] >= 1
    assert status["open_websockets"] == 0
    assert status["vpn"] is None
