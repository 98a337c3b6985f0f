"""Every web template environment has gettext installed (``{% trans %}``, ``_()``)."""

from __future__ import annotations

from pathlib import Path

from gateway.admin import rendering
from gateway.portal import pages
from gateway.web import i18n


def test_templates_mark_text_for_translation(tmp_path: Path) -> None:
    (tmp_path / "t.html").write_text(
        "{% trans name=who %}Hello {{ name }}{% endtrans %} {{ _('Log out') }} <{{ who }}>"
    )
    page = i18n.templates(tmp_path).get_template("t.html").render(who="<b>")
    assert page == "Hello &lt;b&gt; Log out <&lt;b&gt;>"


def test_the_portal_and_the_admin_app_render_with_gettext() -> None:
    for loader in (pages.templates, rendering.templates):
        assert "jinja2.ext.InternationalizationExtension" in loader.env.extensions
        assert loader.env.globals["gettext"] is not None
