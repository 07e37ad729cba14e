"""Where attachment files are kept: one interface (``Storage``), one implementation on local disk.

Objects are content-addressed: ``put`` reads a stream to its end, and its key is the SHA-256 of
the bytes (64 hex digits). Putting the same bytes twice stores them once, a key always names the
same bytes, and nothing needs to be renamed or locked. An S3-compatible store can replace
``DiskStorage`` with the same four methods (``put`` uploading a temporary file under its hash,
``open`` a streaming GET): callers only ever hold keys.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import IO, Protocol

CHUNK = 1 << 16  # read and hash in 64 KiB pieces: memory stays flat whatever the file's size
_KEY = re.compile(r"^[0-9a-f]{64}$")


class Storage(Protocol):
    """A content-addressed object store."""

    def put(self, stream: IO[bytes]) -> str:
        """Store the stream's bytes (read to the end in chunks); their SHA-256 hex is the key."""
        ...

    def open(self, key: str) -> IO[bytes]:
        """The stored bytes of ``key`` for reading (FileNotFoundError when absent)."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> bool:
        """Remove ``key``; False when it was not there."""
        ...


def check_key(key: str) -> str:
    """``key`` when it is a content key (so it can never name a path outside the store)."""
    if not _KEY.match(key):
        raise ValueError(f"not a storage key (64 lowercase hex digits): {key!r}")
    return key


class DiskStorage:
    """Files under ``root``, at ``ab/cd/<key>`` (two levels of 256 folders keep directories small)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        check_key(key)
        return self.root / key[:2] / key[2:4] / key

    def put(self, stream: IO[bytes]) -> str:
        digest = hashlib.sha256()
        # A temporary file on the store's own disk, so the finished object moves in by rename.
        fd, name = tempfile.mkstemp(dir=self.tmp, prefix="put-")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            os.unlink(name)
            raise
        return self.adopt(Path(name), digest.hexdigest())

    def adopt(self, temp: Path, key: str) -> str:
        """Move a finished temporary file (whose SHA-256 the caller computed) in under ``key``."""
        target = self.path(key)
        if target.exists():
            temp.unlink()  # the same bytes are already stored
            return key
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, target)  # atomic: readers see the whole file or none
        return key

    def open(self, key: str) -> IO[bytes]:
        return self.path(key).open("rb")

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete(self, key: str) -> bool:
        try:
            self.path(key).unlink()
        except FileNotFoundError:
            return False
        return True


def storage_at(root: Path) -> Storage:
    """The store the settings name (``Settings.attachment_root``): local disk. An S3-compatible
    store would be chosen here, by a setting, and nowhere else."""
    return DiskStorage(root)
