"""Screenshots of the main pages as a Dutch owner sees them on a phone, for the README.

``scripts/screenshots`` runs this: the simulator and a gateway in front of it, Debian's
Chromium at 375 x 812 with Dutch as the browser's language and Amsterdam as its time zone,
one picture per page into ``docs/screenshots/``. The pictures are documentation, made by
hand when pages change; no test compares them.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from tests.support.admin import ADMIN, ADMIN_PASSWORD, admin_gateway
from tests.support.browser import chromium
from tests.support.gateway import ROOT

OUT = ROOT / "docs" / "screenshots"
PHONE = {"width": 375, "height": 812}


def _log_in(page: Any, base: str) -> None:
    page.goto(base + "/.gateway/login")
    page.fill("#username", ADMIN)
    page.fill("#password", ADMIN_PASSWORD)
    page.click("form[action='/.gateway/login'] button[type=submit]")
    page.wait_for_load_state("networkidle")


def _shoot(page: Any, url: str, name: str, out: Path, *, before: str | None = None) -> Path:
    page.goto(url)
    page.wait_for_load_state("networkidle")
    if before is not None:
        page.click(before)
        page.wait_for_timeout(300)
    path = out / f"{name}.png"
    page.screenshot(path=str(path))
    print(f"  {path.relative_to(ROOT)}")
    return path


def make(out: Path, language: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="cemm-gateway-shots-") as directory:
        with admin_gateway(Path(directory)) as env, chromium() as browser:
            base = env.config.url("").rstrip("/")
            admin = env.admin_url("").rstrip("/")
            context: Any = browser.new_context(  # type: ignore[attr-defined]
                viewport=PHONE,
                device_scale_factor=2,
                is_mobile=True,
                has_touch=True,
                locale=language,
                timezone_id="Europe/Amsterdam",
            )
            page = context.new_page()
            made.append(_shoot(page, base + "/.gateway/login", "login", out))
            _log_in(page, base)
            made.append(_shoot(page, base + "/", "cemm-with-menu", out))
            made.append(
                _shoot(
                    page,
                    base + "/",
                    "cemm-menu-open",
                    out,
                    before="[data-cemm-gateway-menu] button",
                )
            )
            made.append(_shoot(page, base + "/.gateway/account", "account", out))
            for name, path in (
                ("admin-dashboard", "/"),
                ("admin-allowlist", "/allowlist"),
                ("admin-peers", "/peers"),
                ("admin-sessions", "/sessions"),
                ("admin-audit", "/audit"),
            ):
                made.append(_shoot(page, admin + path, name, out))
            context.close()
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--language", default="nl-NL", help="the browser's language (nl-NL)")
    parser.add_argument("--out", type=Path, default=OUT, help="where the pictures go")
    args = parser.parse_args()
    print(f"screenshots at {PHONE['width']} px, {args.language}:")
    make(args.out, args.language)


if __name__ == "__main__":
    main()
