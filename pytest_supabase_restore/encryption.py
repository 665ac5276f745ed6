"""Optional encryption at rest of a backup set: AES-256-GCM in chunks, streaming.

With ``SUPABASE_RESTORE_ENCRYPTION_KEY`` set (the urlsafe base64 encoding of 32 random bytes,
as ``cryptography.fernet.Fernet.generate_key()`` prints), the export encrypts every file of the
set into ``<file>.enc`` before the set gets its final name, and removes the plaintext. The
manifest stays readable: it records each file's plaintext size and SHA-256 and the
ciphertext's size and SHA-256, so a set can be checked for damage without the key.

File format (``<file>.enc``)::

    header   "PSRENC1\\n" | salt (16 random bytes) | chunk size (4 bytes, big endian)
    chunks   AES-256-GCM(plaintext chunk) + 16-byte tag, each chunk but the last full size

Each file has its own key, HKDF-SHA256(master key, salt). Chunk ``i``'s nonce is ``i`` (8
bytes) and a final flag (4 bytes); its associated data is the header, the file's path in the
set, ``i`` and the final flag. So a chunk cannot be changed, moved to another position or
another file, and a file cannot be cut at a chunk boundary or extended: each shows as a chunk
that does not decrypt. Memory stays at two chunks per file, however large the file.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import errno
import hashlib
import hmac
import os
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from . import manifest as mf
from .errors import BackupError
from .model import Encryption, FileEntry, Manifest

ENCRYPTION_ENV = "SUPABASE_RESTORE_ENCRYPTION_KEY"
CHUNK = 1 << 20
MAGIC = b"PSRENC1\n"
SALT_BYTES = 16
HEADER_BYTES = len(MAGIC) + SALT_BYTES + 4
TAG_BYTES = 16
SUFFIX = ".enc"


class DecryptError(Exception):
    """A ``.enc`` file did not decrypt: the wrong key, or the file was changed."""


def parse_key(text: str) -> bytes:
    """The 32-byte key from its urlsafe base64 text. Raises ValueError saying what is wrong."""
    raw = text.strip()
    try:
        key = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32 or base64.urlsafe_b64encode(key).rstrip(b"=") != raw.rstrip("=").encode():
        raise ValueError(
            f"{ENCRYPTION_ENV} must be the urlsafe base64 encoding of 32 random bytes (44 "
            'characters), e.g. the output of python -c "from cryptography.fernet import '
            'Fernet; print(Fernet.generate_key().decode())"'
        )
    return key


def key_check(key: bytes) -> str:
    """A short value that tells whether a key is the one a set was encrypted with, without
    revealing anything about the key (an HMAC of a constant under it)."""
    return hmac.new(key, b"pytest-supabase-restore/key-check/v1", hashlib.sha256).hexdigest()[:16]


def _file_cipher(key: bytes, salt: bytes) -> AESGCM:
    hkdf = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=salt, info=b"pytest-supabase-restore/file/v1"
    )
    return AESGCM(hkdf.derive(key))


def _nonce(index: int, final: bool) -> bytes:
    return struct.pack(">QI", index, int(final))


def _aad(header: bytes, rel: str, index: int, final: bool) -> bytes:
    return header + rel.encode("utf-8") + b"\x00" + struct.pack(">QB", index, int(final))


def _create(path: Path) -> Any:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    return os.fdopen(fd, "wb")


def encrypt_file(
    src: Path, dest: Path, key: bytes, rel: str, chunk_size: int = CHUNK
) -> tuple[str, int, str]:
    """Encrypt ``src`` into the new file ``dest``; ``rel`` is its path in the set.
    Returns (plaintext SHA-256, ciphertext size, ciphertext SHA-256)."""
    salt = os.urandom(SALT_BYTES)
    header = MAGIC + salt + struct.pack(">I", chunk_size)
    cipher = _file_cipher(key, salt)
    plain, ct = hashlib.sha256(), hashlib.sha256()
    size = 0
    with open(src, "rb") as fin, _create(dest) as fout:
        fout.write(header)
        ct.update(header)
        size += len(header)
        block = fin.read(chunk_size)
        index = 0
        while True:
            nxt = fin.read(chunk_size)
            final = not nxt
            plain.update(block)
            sealed = cipher.encrypt(_nonce(index, final), block, _aad(header, rel, index, final))
            fout.write(sealed)
            ct.update(sealed)
            size += len(sealed)
            if final:
                break
            block, index = nxt, index + 1
        fout.flush()
        os.fsync(fout.fileno())
    return plain.hexdigest(), size, ct.hexdigest()


def decrypt_file(root: Path, rel: str, dest: Path, key: bytes) -> tuple[int, str]:
    """Decrypt ``root/<rel>.enc`` (a regular file, no symbolic link on its path) into the new
    file ``dest``. Returns the plaintext's (size, SHA-256). Raises DecryptError."""
    name = rel + SUFFIX
    digest = hashlib.sha256()
    size = 0
    with os.fdopen(mf.open_regular(root, name), "rb") as fin, _create(dest) as fout:
        header = fin.read(HEADER_BYTES)
        if len(header) < HEADER_BYTES or not header.startswith(MAGIC):
            raise DecryptError(f"{name}: not an encrypted file of this plugin (bad header)")
        salt = header[len(MAGIC) : len(MAGIC) + SALT_BYTES]
        (chunk_size,) = struct.unpack(">I", header[-4:])
        if not mf.MIN_CHUNK <= chunk_size <= mf.MAX_CHUNK:
            raise DecryptError(f"{name}: chunk size {chunk_size} in its header is out of range")
        cipher = _file_cipher(key, salt)
        block = fin.read(chunk_size + TAG_BYTES)
        index = 0
        while True:
            nxt = fin.read(chunk_size + TAG_BYTES)
            final = not nxt
            try:
                data = cipher.decrypt(_nonce(index, final), block, _aad(header, rel, index, final))
            except (InvalidTag, ValueError):
                raise DecryptError(
                    f"{name}: chunk {index} does not decrypt: the file was modified, truncated "
                    f"or its chunks reordered, or this is the wrong {ENCRYPTION_ENV}"
                ) from None
            fout.write(data)
            digest.update(data)
            size += len(data)
            if final:
                break
            block, index = nxt, index + 1
    return size, digest.hexdigest()


def encrypt_set(root: Path, manifest: Manifest, key: bytes, jobs: int = 2) -> Manifest:
    """Encrypt every file the manifest being written lists, in place: ``<file>`` becomes
    ``<file>.enc``. Returns the manifest with ``encryption`` and each file's ``enc_size`` and
    ``enc_sha256``. Raises BackupError if a file changed since it was listed."""
    files = manifest.files

    def one(rel: str) -> tuple[str, FileEntry]:
        src = root / rel
        sha, enc_size, enc_sha = encrypt_file(src, root / (rel + SUFFIX), key, rel)
        if sha != files[rel].sha256:
            raise BackupError(
                f"{rel} changed while the backup set was encrypted; nothing may write into a "
                "set during its export, so run the export again."
            )
        src.unlink()
        return rel, dataclasses.replace(files[rel], enc_size=enc_size, enc_sha256=enc_sha)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        encrypted = dict(pool.map(one, sorted(files)))
    return dataclasses.replace(
        manifest,
        version=mf.ENCRYPTED_VERSION,
        files=encrypted,
        encryption=Encryption(mf.ENCRYPTION_SCHEME, CHUNK, key_check(key)),
    )


def decrypt_set(root: Path, manifest: Manifest, key: bytes, dest: Path, jobs: int = 2) -> list[str]:
    """Decrypt every file of the encrypted set ``root`` into ``dest`` and check each plaintext
    against the manifest. Returns problems, each naming the file (BackupError: wrong key)."""
    assert manifest.encryption is not None, "decrypt_set needs an encrypted set"
    if not hmac.compare_digest(manifest.encryption.key_check, key_check(key)):
        raise BackupError(
            f"Cannot decrypt the backup set {root.name}: it was encrypted with another key "
            f"(its key check differs): wrong {ENCRYPTION_ENV}? Set the key it was exported with."
        )
    files = manifest.files

    def one(rel: str) -> str | None:
        meta = files[rel]
        try:
            size, sha = decrypt_file(root, rel, dest / rel, key)
        except DecryptError as exc:
            return str(exc)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise BackupError(
                    f"The disk below {dest.parent} is full: the decrypted backup set needs "
                    "as much space as the set itself; point TMPDIR at a larger disk."
                ) from exc
            return f"{rel}{SUFFIX}: cannot be decrypted ({exc.strerror or exc})"
        if size != meta.size or sha != meta.sha256:
            return f"{rel}: modified (the decrypted file differs from the manifest)"
        return None

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return [p for p in pool.map(one, sorted(files)) if p]
