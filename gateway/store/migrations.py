"""Schema migrations, applied in order; never edit one that has shipped, add a new one."""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: allowlist entries and the audit log.
    """
    CREATE TABLE allowlist_entry (
        id INTEGER PRIMARY KEY,
        network TEXT NOT NULL UNIQUE,
        label TEXT NOT NULL DEFAULT '',
        expires_at REAL,
        created_at REAL NOT NULL,
        created_by TEXT NOT NULL,
        hits INTEGER NOT NULL DEFAULT 0,
        last_hit_at REAL
    );
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        actor TEXT NOT NULL,
        event TEXT NOT NULL,
        client_address TEXT,
        user_agent TEXT,
        detail TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX audit_log_at ON audit_log (at);
    CREATE INDEX audit_log_event ON audit_log (event, at)
    """,
)
