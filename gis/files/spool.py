"""An upload received into a temporary file piece by piece, hashed and counted as it arrives, so
that no upload is ever held whole in memory and the size limit is enforced while it streams."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from gis.files.errors import TooLarge, Truncated


class Spool:
    """Write chunks with ``write``; ``finish`` checks the declared length; ``discard`` removes it."""

    def __init__(self, folder: Path, max_bytes: int, declared: int | None = None) -> None:
        if declared is not None and declared > max_bytes:
            raise TooLarge(max_bytes)  # refused before a byte is read
        folder.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.declared = declared
        self.size = 0
        self._digest = hashlib.sha256()
        fd, name = tempfile.mkstemp(dir=folder, prefix="in-")
        self.path = Path(name)
        self._file = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise TooLarge(self.max_bytes)
        self._digest.update(chunk)
        self._file.write(chunk)

    def finish(self) -> str:
        """Close the file; the SHA-256 of what was received. Truncated when fewer bytes came than
        the request declared, or none at all."""
        self._file.close()
        if self.declared is not None and self.size < self.declared:
            raise Truncated(f"the upload is truncated: {self.size:,} of the {self.declared:,} bytes declared arrived")
        if self.size == 0:
            raise Truncated("the upload is empty")
        return self._digest.hexdigest()

    def discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)
