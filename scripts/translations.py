"""The gateway's message catalogs (docs/translating.md).

    scripts/translations extract          list the messages found in the code (a .pot on stdout)
    scripts/translations update           add new messages to every catalog, drop gone ones
    scripts/translations init LANG        start a catalog for a new language (e.g. de)
    scripts/translations compile          write each catalog's messages.mo
    scripts/translations check            fail (exit 1) when a catalog misses a translation,
                                          holds a fuzzy one, is not up to date with the code,
                                          or its messages.mo is not up to date with it

The catalogs are gateway/locale/<lang>/LC_MESSAGES/messages.po; babel.cfg says where the
messages are. English is the source language and has no catalog.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "gateway" / "locale"
PROJECT = "cemm-gateway"
PROJECT_VERSION = "1"  # the catalogs follow the code, not a release


def extract() -> Catalog:
    with (ROOT / "babel.cfg").open() as file:
        method_map, options_map = parse_mapping_cfg(file)
    catalog = Catalog(project=PROJECT, charset="utf-8")
    for filename, _lineno, message, comments, context in extract_from_dir(
        ROOT, method_map, options_map, keywords=DEFAULT_KEYWORDS
    ):
        catalog.add(message, None, [(filename, None)], auto_comments=comments, context=context)
    return catalog


def catalogs() -> list[Path]:
    return sorted(LOCALE.glob("*/LC_MESSAGES/messages.po"))


def read(path: Path) -> Catalog:
    with path.open("rb") as file:
        return read_po(file)


def write(path: Path, catalog: Catalog) -> None:
    buffer = io.BytesIO()
    # File names without line numbers: a moved line does not change the catalog.
    write_po(buffer, catalog, width=100, include_lineno=False, ignore_obsolete=True)
    path.write_bytes(buffer.getvalue())


def mo_bytes(catalog: Catalog) -> bytes:
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    return buffer.getvalue()


def cmd_extract() -> int:
    buffer = io.BytesIO()
    write_po(buffer, extract(), width=100, include_lineno=False)
    sys.stdout.write(buffer.getvalue().decode())
    return 0


def cmd_update() -> int:
    template = extract()
    for path in catalogs():
        catalog = read(path)
        # No fuzzy guesses (a new message is plainly untranslated) and no churn in the header.
        catalog.update(template, no_fuzzy_matching=True, update_creation_date=False)
        write(path, catalog)
        print(f"{path.relative_to(ROOT)}: {len(catalog)} messages")
    return 0


def cmd_init(language: str) -> int:
    path = LOCALE / language / "LC_MESSAGES" / "messages.po"
    if path.exists():
        print(f"{path.relative_to(ROOT)} exists; use update", file=sys.stderr)
        return 1
    catalog = Catalog(
        locale=language,
        project=PROJECT,
        version=PROJECT_VERSION,
        charset="utf-8",
        header_comment=f"# The {language} messages of {PROJECT} (docs/translating.md).",
        msgid_bugs_address="",
        fuzzy=False,
    )
    catalog.update(extract(), no_fuzzy_matching=True)
    path.parent.mkdir(parents=True)
    write(path, catalog)
    print(f"{path.relative_to(ROOT)}: {len(catalog)} messages to translate")
    return 0


def cmd_compile() -> int:
    for path in catalogs():
        path.with_suffix(".mo").write_bytes(mo_bytes(read(path)))
        print(f"{path.with_suffix('.mo').relative_to(ROOT)} written")
    return 0


def problems(path: Path, template: Catalog) -> list[str]:
    """What is wrong with one catalog, one line each."""
    catalog = read(path)
    found: list[str] = []
    wanted = {message.id for message in template if message.id}
    present = {message.id for message in catalog if message.id}
    for msgid in sorted(wanted - present, key=str):
        found.append(f"not in the catalog (run update): {msgid!r}")
    for message in catalog:
        if not message.id or message.id not in wanted:
            continue
        texts = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy:
            found.append(f"fuzzy: {message.id!r}")
        elif not all(texts):
            found.append(f"untranslated: {message.id!r}")
    for msgid in sorted(present - wanted, key=str):
        found.append(f"no longer in the code (run update): {msgid!r}")
    mo = path.with_suffix(".mo")
    if not mo.is_file() or mo.read_bytes() != mo_bytes(catalog):
        found.append(f"{mo.name} is not up to date with {path.name} (run compile)")
    return found


def cmd_check() -> int:
    template = extract()
    failed = False
    for path in catalogs():
        found = problems(path, template)
        name = path.relative_to(ROOT)
        if found:
            failed = True
            print(f"{name}: {len(found)} problem(s)")
            for line in found:
                print(f"  {line}")
        else:
            print(f"{name}: complete")
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "init":
        return cmd_init(argv[1])
    commands = {
        "extract": cmd_extract,
        "update": cmd_update,
        "compile": cmd_compile,
        "check": cmd_check,
    }
    if len(argv) != 1 or argv[0] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    return commands[argv[0]]()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
