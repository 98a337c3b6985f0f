"""The message catalogs: complete, up to date with the code, compiled, and in the CEMM's
own words (docs/glossary-nl.md). ``scripts/translations check`` says the same on the
command line; this test makes CI say it."""

from __future__ import annotations

import fnmatch
import importlib.util
import re
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
from babel.messages.catalog import Catalog

from gateway import i18n

ROOT = Path(__file__).resolve().parents[2]
GLOSSARY = ROOT / "docs" / "glossary-nl.md"
# {name} of Python messages, %(name)s of template messages.
PLACEHOLDER = re.compile(r"\{[a-z_]+\}|%\([a-z_]+\)s")


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("translations", ROOT / "scripts/translations.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("translations", module)
    spec.loader.exec_module(module)
    return module


SCRIPT = _script()
CATALOGS = SCRIPT.catalogs()


@pytest.fixture(scope="module")
def template() -> Catalog:
    """The messages in the code now."""
    catalog: Catalog = SCRIPT.extract()
    return catalog


def test_there_is_a_dutch_catalog_and_it_is_available() -> None:
    assert ROOT / "gateway/locale/nl/LC_MESSAGES/messages.po" in CATALOGS
    assert i18n.available() == ("en", "nl")


@pytest.mark.parametrize("path", CATALOGS, ids=lambda p: p.parts[-3])
def test_every_message_is_translated_and_compiled(path: Path, template: Catalog) -> None:
    """No message missing, empty or fuzzy; nothing stale; the .mo is the .po compiled."""
    problems = SCRIPT.problems(path, template)
    assert problems == [], "run scripts/translations check:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", CATALOGS, ids=lambda p: p.parts[-3])
def test_translations_keep_their_placeholders(path: Path) -> None:
    wrong = []
    for message in SCRIPT.read(path):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        texts = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set(PLACEHOLDER.findall(ids[-1]))
        if any(set(PLACEHOLDER.findall(text)) - wanted for text in texts) or not wanted <= set(
            PLACEHOLDER.findall(texts[-1])
        ):
            wrong.append(ids[0])
    assert wrong == []


def glossary() -> list[tuple[str, str]]:
    """(English, Dutch) rows of the glossary's table."""
    rows = []
    for line in GLOSSARY.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] not in ("English", "---") and line.startswith("|"):
            rows.append((cells[0], cells[1]))
    return rows


def test_the_glossary_has_the_cemms_own_words() -> None:
    terms = dict(glossary())
    assert terms["Settings"] == "Instellingen"
    assert terms["System"] == "Systeem"
    assert terms["Log in"] == "inloggen"


MARKUP = re.compile(r"<[^>]*>")


def test_dutch_uses_the_glossary() -> None:
    """Where an English message holds a glossary term (a whole word, also plural, in the text
    a person reads: not inside markup such as a link's address), its Dutch translation holds
    the Dutch term (any case, also inside a longer word)."""
    terms = [
        (re.compile(rf"\b{re.escape(english)}s?\b", re.IGNORECASE), dutch.lower())
        for english, dutch in glossary()
    ]
    breaches = []
    for message in SCRIPT.read(ROOT / "gateway/locale/nl/LC_MESSAGES/messages.po"):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        texts = message.string if isinstance(message.string, tuple) else (message.string,)
        for english_text, dutch_text in zip(ids, texts, strict=False):
            plain = " ".join(PLACEHOLDER.sub(" ", MARKUP.sub(" ", english_text)).split())
            for pattern, dutch in terms:
                if pattern.search(plain) and dutch not in dutch_text.lower():
                    breaches.append(f"{english_text!r} -> {dutch_text!r}: wants {dutch!r}")
    assert breaches == [], "\n".join(breaches)


def test_the_check_names_what_is_missing(tmp_path: Path, template: Catalog) -> None:
    """``scripts/translations check`` lists an untranslated message by its id, so a
    translator sees what to do after a merge brought new English text."""
    catalog = SCRIPT.read(ROOT / "gateway/locale/nl/LC_MESSAGES/messages.po")
    catalog["Log in"].string = ""
    copy = tmp_path / "messages.po"
    SCRIPT.write(copy, catalog)
    copy.with_suffix(".mo").write_bytes(SCRIPT.mo_bytes(catalog))
    assert SCRIPT.problems(copy, template) == ["untranslated: 'Log in'"]


def test_the_compiled_catalogs_are_package_data() -> None:
    """The wheel (and so the image) carries every messages.mo: a pattern of
    ``[tool.setuptools.package-data]`` matches each one."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = project["tool"]["setuptools"]["package-data"]["gateway"]
    package = ROOT / "gateway"
    for path in CATALOGS:
        compiled = path.with_suffix(".mo").relative_to(package)
        assert any(fnmatch.fnmatch(compiled.as_posix(), pattern) for pattern in patterns), compiled
