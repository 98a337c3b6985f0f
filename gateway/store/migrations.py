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
    # 2: users, sessions, second factor, API tokens, login failures, bans.
    """
    CREATE TABLE user (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
        role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
        password_hash TEXT,
        disabled INTEGER NOT NULL DEFAULT 0,
        email TEXT COLLATE NOCASE,
        oidc_issuer TEXT,
        oidc_subject TEXT,
        totp_secret TEXT,
        totp_enabled INTEGER NOT NULL DEFAULT 0,
        totp_last_step INTEGER,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        UNIQUE (oidc_issuer, oidc_subject)
    );
    CREATE TABLE recovery_code (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
        code_hash TEXT NOT NULL,
        used_at REAL
    );
    CREATE INDEX recovery_code_user ON recovery_code (user_id);
    CREATE TABLE session (
        id TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        user_id INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
        csrf_token TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_seen_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        client_address TEXT,
        user_agent TEXT,
        revoked_at REAL,
        revoked_reason TEXT
    );
    CREATE INDEX session_user ON session (user_id);
    CREATE TABLE api_token (
        id TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        secret_hash TEXT NOT NULL,
        read_only INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        expires_at REAL,
        last_used_at REAL,
        revoked_at REAL
    );
    CREATE INDEX api_token_user ON api_token (user_id);
    CREATE TABLE login_failure (
        id INTEGER PRIMARY KEY,
        subject TEXT NOT NULL,
        at REAL NOT NULL
    );
    CREATE INDEX login_failure_subject ON login_failure (subject, at);
    CREATE TABLE ban (
        id INTEGER PRIMARY KEY,
        subject TEXT NOT NULL,
        reason TEXT NOT NULL,
        created_at REAL NOT NULL,
        until REAL NOT NULL,
        lifted_at REAL,
        lifted_by TEXT
    );
    CREATE INDEX ban_subject ON ban (subject, until)
    """,
    # 3: WireGuard peers and one-time links for moving a config to a phone.
    """
    CREATE TABLE wireguard_peer (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
        user_id INTEGER REFERENCES user (id) ON DELETE SET NULL,
        public_key TEXT NOT NULL UNIQUE,
        private_key_sealed TEXT,
        private_key_until REAL,
        preshared_key TEXT,
        address_v4 TEXT NOT NULL UNIQUE,
        address_v6 TEXT UNIQUE,
        enabled INTEGER NOT NULL DEFAULT 1,
        trusted INTEGER NOT NULL DEFAULT 0,
        expires_at REAL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        first_handshake_at REAL
    );
    CREATE TABLE peer_link (
        token_hash TEXT PRIMARY KEY,
        peer_id INTEGER NOT NULL REFERENCES wireguard_peer (id) ON DELETE CASCADE,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        used_at REAL
    )
    """,
    # 4: browsers that completed a login as an account (the account-wide ban spares them).
    """
    CREATE TABLE known_device (
        id INTEGER PRIMARY KEY,
        token_hash TEXT NOT NULL,
        user_id INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
        created_at REAL NOT NULL,
        last_login_at REAL NOT NULL,
        UNIQUE (token_hash, user_id)
    );
    CREATE INDEX known_device_user ON known_device (user_id, last_login_at)
    """,
    # 5: the addresses each account logged in from, for "a login from an address not seen
    # for this account in 90 days" (not read from the audit log, which is purged).
    """
    CREATE TABLE login_address (
        user_name TEXT NOT NULL COLLATE NOCASE,
        address TEXT NOT NULL,
        first_seen_at REAL NOT NULL,
        last_seen_at REAL NOT NULL,
        PRIMARY KEY (user_name, address)
    )
    """,
    # 6: the viewer role (the CHECK is widened in place: rebuilding the user table would
    # cascade-delete its sessions), API token scopes, guest links and their sessions.
    """
    PRAGMA writable_schema = ON;
    UPDATE sqlite_schema SET sql = replace(sql, 'CHECK (role IN (''admin'', ''user''))',
        'CHECK (role IN (''admin'', ''user'', ''viewer''))') WHERE type = 'table' AND name = 'user';
    PRAGMA writable_schema = RESET;
    ALTER TABLE api_token ADD COLUMN scopes TEXT NOT NULL DEFAULT '[]';
    CREATE TABLE guest_link (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('viewer', 'user')),
        token_hash TEXT NOT NULL UNIQUE,
        browsers INTEGER NOT NULL DEFAULT 1,
        created_by TEXT NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        revoked_at REAL,
        first_used_at REAL,
        first_used_from TEXT
    );
    CREATE TABLE guest_session (
        id TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        link_id INTEGER NOT NULL REFERENCES guest_link (id) ON DELETE CASCADE,
        guest_name TEXT NOT NULL,
        csrf_token TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_seen_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        client_address TEXT,
        user_agent TEXT,
        revoked_at REAL
    );
    CREATE INDEX guest_session_link ON guest_session (link_id)
    """,
    # 7: settings changed at run time from the admin app (gateway/settings/runtime.py).
    """
    CREATE TABLE runtime_setting (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        changed_at REAL NOT NULL,
        changed_by TEXT NOT NULL
    )
    """,
    # 8: each account's language for the gateway's pages ('auto': the browser decides).
    """
    ALTER TABLE user ADD COLUMN language TEXT NOT NULL DEFAULT 'auto'
    """,
    # 9: passkeys (WebAuthn credentials), each bound to the relying-party ID it was made for.
    """
    CREATE TABLE passkey (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        credential_id TEXT NOT NULL UNIQUE,
        public_key BLOB NOT NULL,
        sign_count INTEGER NOT NULL DEFAULT 0,
        rp_id TEXT NOT NULL,
        transports TEXT NOT NULL DEFAULT '[]',
        created_at REAL NOT NULL,
        last_used_at REAL
    );
    CREATE INDEX passkey_user ON passkey (user_id)
    """,
)
