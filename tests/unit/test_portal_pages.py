"""The one page frame: the portal's and the admin's pages share it, and differ only in the
blocks they fill in."""

from __future__ import annotations

from pathlib import Path

from gateway.admin.pages import templates as admin_templates
from gateway.portal.pages import templates as portal_templates

GATEWAY = Path(__file__).resolve().parents[2] / "gateway"


def test_only_the_frame_is_a_whole_html_document() -> None:
    documents = sorted(
        str(path.relative_to(GATEWAY))
        for path in GATEWAY.rglob("templates/*.html")
        if "<!doctype html>" in path.read_text().lower()
    )
    assert documents == ["web/templates/frame.html"]


def _frame_lines(html: str) -> list[str]:
    """The lines every page of the gateway has (the head's metadata, the footer)."""
    return [
        line
        for line in html.splitlines()
        if line.startswith(("<meta ", '<link rel="icon"', "<footer", "  <p>cemm-gateway"))
    ]


def test_portal_and_admin_pages_share_the_frame() -> None:
    portal = portal_templates.get_template("message.html").render(
        title="T", message="M", link_href=None
    )
    admin = admin_templates.get_template("admin_message.html").render(
        title="T", message="M", caller=None, current_path="/", csrf_token=None
    )
    assert _frame_lines(portal) == _frame_lines(admin)
    assert len(_frame_lines(portal)) == 8
    assert "<title>T · cemm-gateway</title>" in portal
    assert "<title>T · cemm-gateway admin</title>" in admin
    assert '<body class="layout-narrow">' in portal
    assert '<body class="layout-admin">' in admin
    assert '<link rel="stylesheet" href="/static/admin.css">' in admin
    assert "/static/admin" not in portal
