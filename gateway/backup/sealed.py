"""The encrypted container of a backup file: a versioned header, then AES-256-GCM.

A backup file is one header and one AES-256-GCM ciphertext; every integer is unsigned
big-endian::

    offset  size  field
    0       8     magic: the ASCII bytes "CEMMBKP" and a zero byte
    8       2     format version (1)
    10      1     key derivation function: 1 = Argon2id, version 0x13 (RFC 9106)
    11      1     Argon2 parallelism (lanes)
    12      4     Argon2 time cost (passes)
    16      4     Argon2 memory cost in KiB (at most 65536: 64 MiB)
    20      16    salt (random)
    36      12    AES-GCM nonce (random)
    48      8     length of what follows the header: ciphertext and 16-byte tag
    56      16    passphrase check: the first 16 bytes of SHA-256(K[32:64])
    72      ...   AES-256-GCM ciphertext followed by its 16-byte tag

``K`` is 64 bytes of Argon2id(password = the passphrase as UTF-8, salt, time cost, memory
cost, parallelism; no secret, no associated data). ``K[0:32]`` is the AES-256 key; the
associated data of the encryption is the whole 72-byte header, so no field of it can be
changed unnoticed. The passphrase check lets a reader say "wrong passphrase" rather than
"altered file": it depends only on the passphrase, the salt and the KDF parameters, and
costs an attacker no less than the tag itself does (one Argon2 run per guess).

The plaintext is an uncompressed tar archive (:mod:`gateway.backup.contents`). It is
sealed in one piece, so it is held in memory: a backup holds at most ``MAX_PLAINTEXT``
bytes (256 MiB; a gateway's data directory is a few megabytes).

Reading refuses, each with its own message: a file that is not a backup, a format version
newer than this code, KDF parameters asking for more than 64 MiB (a backup must never
starve the gateway), a truncated file or one with bytes after its end, a wrong
passphrase, and an altered file.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from dataclasses import dataclass

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"CEMMBKP\x00"
FORMAT_VERSION = 1
KDF_ARGON2ID = 1
MAX_MEMORY_KIB = 64 * 1024
MAX_PLAINTEXT = 256 * 1024 * 1024
TAG_BYTES = 16
_HEADER = struct.Struct(">8sHBBII16s12sQ16s")
HEADER_BYTES = _HEADER.size  # 72


class BackupError(Exception):
    """A backup cannot be made or read; the message says what is wrong."""


@dataclass(frozen=True)
class KdfParams:
    """Argon2id's cost. :data:`PRODUCTION_KDF` is what a backup is made with."""

    time_cost: int = 3
    memory_kib: int = MAX_MEMORY_KIB
    parallelism: int = 1


PRODUCTION_KDF = KdfParams()


def _derive(passphrase: str, salt: bytes, kdf: KdfParams) -> tuple[bytes, bytes]:
    """The AES key and the passphrase check."""
    derived = hash_secret_raw(
        passphrase.encode("utf-8"),
        salt,
        time_cost=kdf.time_cost,
        memory_cost=kdf.memory_kib,
        parallelism=kdf.parallelism,
        hash_len=64,
        type=Type.ID,
        version=0x13,
    )
    return derived[:32], hashlib.sha256(derived[32:]).digest()[:16]


def seal(plaintext: bytes, passphrase: str, *, kdf: KdfParams = PRODUCTION_KDF) -> bytes:
    """The backup file's bytes: ``plaintext`` encrypted under ``passphrase``."""
    if not passphrase:
        raise BackupError("the passphrase is empty")
    if len(plaintext) > MAX_PLAINTEXT:
        raise BackupError(
            f"the backup would hold {len(plaintext)} bytes, more than the "
            f"{MAX_PLAINTEXT // (1024 * 1024)} MiB a backup may hold"
        )
    if kdf.memory_kib > MAX_MEMORY_KIB:
        raise BackupError("the key derivation may use at most 64 MiB")
    salt, nonce = os.urandom(16), os.urandom(12)
    key, check = _derive(passphrase, salt, kdf)
    header = _HEADER.pack(
        MAGIC,
        FORMAT_VERSION,
        KDF_ARGON2ID,
        kdf.parallelism,
        kdf.time_cost,
        kdf.memory_kib,
        salt,
        nonce,
        len(plaintext) + TAG_BYTES,
        check,
    )
    return header + AESGCM(key).encrypt(nonce, plaintext, header)


def open_sealed(data: bytes, passphrase: str) -> bytes:
    """The plaintext of a backup file; :class:`BackupError` naming what is wrong."""
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise BackupError("this is not a cemm-gateway backup file (its first bytes are wrong)")
    if len(data) < HEADER_BYTES:
        raise BackupError(
            f"the backup file is truncated: {len(data)} bytes, shorter than its header"
        )
    _, version, kdf_id, lanes, passes, memory, salt, nonce, length, check = _HEADER.unpack(
        data[:HEADER_BYTES]
    )
    if version > FORMAT_VERSION:
        raise BackupError(
            f"the backup was made by a newer gateway (backup format {version}; this gateway "
            f"reads format {FORMAT_VERSION}); restore it with that version or a later one"
        )
    if version != FORMAT_VERSION or kdf_id != KDF_ARGON2ID:
        raise BackupError(f"the backup's header is damaged (format {version}, KDF {kdf_id})")
    if memory > MAX_MEMORY_KIB or not (1 <= lanes and 1 <= passes <= 64 and memory >= 8 * lanes):
        raise BackupError(
            f"the backup's key derivation asks for {memory} KiB of memory and {passes} "
            "passes; at most 64 MiB is allowed (the header is damaged)"
        )
    if length > MAX_PLAINTEXT + TAG_BYTES:
        raise BackupError("the backup's header is damaged (it claims an impossible size)")
    body = data[HEADER_BYTES:]
    if len(body) < length:
        raise BackupError(
            f"the backup file is truncated: {len(data)} bytes of {HEADER_BYTES + length}"
        )
    if len(body) > length:
        raise BackupError(
            f"the backup file has {len(body) - length} unexpected bytes after its end"
        )
    key, expected = _derive(passphrase, salt, KdfParams(passes, memory, lanes))
    if not hmac.compare_digest(check, expected):
        raise BackupError("wrong passphrase: it does not open this backup")
    try:
        return AESGCM(key).decrypt(nonce, body, data[:HEADER_BYTES])
    except InvalidTag:
        raise BackupError(
            "the backup file was altered or damaged: its contents fail the integrity check"
        ) from None
