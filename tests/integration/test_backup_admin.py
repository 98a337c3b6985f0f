"""The admin app's backup page: a download after a fresh proof, with a passphrase typed in
the page; the dashboard says why automatic backups are off."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import httpx
import pytest

from gateway import backup
from tests.support.admin import ADMIN, ADMIN_PASSWORD, AdminEnv, admin_gateway, form_token
from tests.support.gateway import cli


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminEnv]:
    with admin_gateway(tmp_path_factory.mktemp("backup-admin")) as e:
        yield e


def _logged_in(env: AdminEnv) -> httpx.Client:
    client = httpx.Client(base_url=env.admin_url(""), timeout=30)
    page = client.get("/backup", follow_redirects=True)
    form = {
        "username": ADMIN,
        "password": ADMIN_PASSWORD,
        "next": "/backup",
        "csrf_token": form_token(page.text),
    }
    assert client.post("/.gateway/login", data=form).status_code == 303
    return client


def test_download_a_backup_with_a_passphrase_typed_in_the_page(env: AdminEnv) -> None:
    with contextlib.closing(_logged_in(env)) as client:
        page = client.get("/backup")
        assert page.status_code == 200
        assert "automatic backups are off: [backup] passphrase_file is not set" in page.text.lower()
        token = form_token(page.text)
        forged = client.post("/backup", data={"passphrase": "p", "passphrase_again": "p"})
        assert forged.status_code == 403
        differ = client.post(
            "/backup",
            data={"csrf_token": token, "passphrase": "one phrase", "passphrase_again": "another"},
        )
        assert differ.status_code == 400 and "The two passphrases differ" in differ.text
        wrong = client.post(
            "/backup",
            data={
                "csrf_token": token,
                "password": "not it",
                "passphrase": "x",
                "passphrase_again": "x",
            },
        )
        assert wrong.status_code == 400 and "The password is wrong" in wrong.text
        done = client.post(
            "/backup",
            data={
                "csrf_token": token,
                "password": ADMIN_PASSWORD,
                "passphrase": "page passphrase",
                "passphrase_again": "page passphrase",
            },
        )
        assert done.status_code == 200
        assert done.headers["content-type"] == "application/octet-stream"
        assert re.match(
            r'attachment; filename="cemm-gateway-\d{8}T\d{6}Z\.cgbk"',
            done.headers["content-disposition"],
        )
        assert done.headers["cache-control"] == "no-store"
        found = backup.load(done.content, "page passphrase")
        assert "gateway.db" in found.files
        dashboard = client.get("/")
        assert "data-backup-off" in dashboard.text
    logged = cli("audit", "--event", "backup", config=env.config.path)
    assert "backup.downloaded" in logged.stdout and "page passphrase" not in logged.stdout
