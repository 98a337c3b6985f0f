"""``[backup]``: automatic encrypted backups of the data directory.

Without ``passphrase_file`` automatic backups are off (the dashboard says so). ``interval``
is in seconds like every other duration key; ``directory`` empty means
``<data_dir>/backups``; ``keep`` is how many automatic backups stay, the oldest going first.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_DIRECTORY_NAME = "backups"


class BackupSettings(BaseModel):
    """Automatic backups: how often, how many, where, and the passphrase's file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interval: float = Field(default=86400.0, ge=60)
    keep: int = Field(default=7, ge=1, le=1000)
    directory: str = ""
    passphrase_file: str = Field(default="", repr=False)
