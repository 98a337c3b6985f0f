"""``cemm-gateway backup``: encrypted backups of the data directory (create, verify,
restore). The format and what a backup holds: :mod:`gateway.backup`.

The passphrase comes from ``--passphrase-file F`` (its first line) or is asked on the
terminal - twice when making a backup. ``restore`` checks the whole backup before it
touches the data directory, refuses while a gateway runs there, and replaces existing data
only with ``--force`` (kept aside in ``<data_dir>/.replaced-<time>/``).
"""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path

from gateway import backup
from gateway.backup import restore as restoring
from gateway.cli import common
from gateway.cli.common import EXIT_OK, CommandError
from gateway.settings import Settings, load_settings

PASSPHRASE_FILE: common.Argument = (
    ("--passphrase-file",),
    {
        "metavar": "F",
        "type": Path,
        "default": None,
        "help": "read the passphrase from the first line of F (default: ask on the terminal)",
    },
)


def passphrase(args: argparse.Namespace, *, confirm: bool) -> str:
    """The passphrase: from ``--passphrase-file``, else asked (twice to make a backup)."""
    if args.passphrase_file is not None:
        return backup.read_passphrase_file(args.passphrase_file)
    first = getpass.getpass("Backup passphrase: ")
    if not first:
        raise CommandError("the passphrase is empty")
    if confirm and getpass.getpass("Repeat the passphrase: ") != first:
        raise CommandError("the two passphrases differ; nothing was written")
    return first


def excluded(settings: Settings) -> tuple[Path, ...]:
    """What inside the data directory is not backed up: the automatic backups."""
    return backup.excluded_directory(settings.data_dir, settings.backup_directory)


def _load(args: argparse.Namespace) -> backup.Contents:
    data = backup.read_backup_file(args.file)
    return backup.load(data, passphrase(args, confirm=False))


def cmd_create(args: argparse.Namespace) -> int:
    settings = common.settings(args)
    secret = passphrase(args, confirm=True)
    try:
        data = backup.create(
            settings.data_dir, secret, now=common.now(), excluded=excluded(settings)
        )
        _make_parent(args.output)
        backup.write_file(args.output, data)
    except backup.BackupError as error:
        raise CommandError(str(error)) from None
    print(f"wrote {args.output} ({len(data)} bytes) from {settings.data_dir}")
    return EXIT_OK


def _make_parent(path: Path) -> None:
    """The output's directory (``/data/backups`` before the first automatic backup)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as error:
        raise backup.BackupError(f"cannot create {path.parent}: {error.strerror}") from None


def cmd_verify(args: argparse.Namespace) -> int:
    try:
        contents = _load(args)
    except backup.BackupError as error:
        raise CommandError(str(error)) from None
    print(
        f"{args.file}: a good backup taken {contents.created_at} by cemm-gateway "
        f"{contents.gateway_version} (database schema {contents.schema_version}), "
        f"{len(contents.files)} file{'' if len(contents.files) == 1 else 's'}"
    )
    return EXIT_OK


def cmd_restore(args: argparse.Namespace) -> int:
    # No database is needed in the data directory: it may be new and empty.
    settings = load_settings(args.config)
    try:
        contents = _load(args)
        aside = restoring.restore(
            contents,
            settings.data_dir,
            force=args.force,
            now=common.now(),
            excluded=excluded(settings),
        )
    except backup.BackupError as error:
        raise CommandError(str(error)) from None
    print(f"restored the backup taken {contents.created_at} into {settings.data_dir}")
    if aside is not None:
        print(f"the data that was there is kept in {aside}")
    return EXIT_OK


def register(commands: common.Commands) -> None:
    group = common.resource(commands, "backup", "encrypted backups of the data directory")
    common.action(
        group,
        "create",
        cmd_create,
        "write an encrypted backup of the data directory",
        (
            ("--output",),
            {
                "metavar": "FILE",
                "type": Path,
                "required": True,
                "help": "where to write the backup",
            },
        ),
        PASSPHRASE_FILE,
    )
    common.action(
        group,
        "verify",
        cmd_verify,
        "check a backup: passphrase, integrity and version",
        (("file",), {"metavar": "FILE", "type": Path, "help": "the backup file"}),
        PASSPHRASE_FILE,
    )
    common.action(
        group,
        "restore",
        cmd_restore,
        "restore a backup into the data directory (the gateway must be stopped)",
        (("file",), {"metavar": "FILE", "type": Path, "help": "the backup file"}),
        PASSPHRASE_FILE,
        (
            ("--force",),
            {
                "action": "store_true",
                "help": "replace existing data (kept in <data_dir>/.replaced-<time>/)",
            },
        ),
    )
