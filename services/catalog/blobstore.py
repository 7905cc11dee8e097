"""Where the DICOM files themselves live. The index only keeps a blob key per instance.

`BlobStore` is the interface; `FileBlobStore` keeps blobs on the local filesystem, content
addressed (SHA-256), so the same bytes are stored once and a key never changes meaning.
An S3-compatible store would implement the same four methods.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Protocol


class BlobStore(Protocol):
    def put(self, data: bytes) -> str:
        """Store the bytes; return their key. Storing the same bytes twice is a no-op."""

    def open(self, key: str) -> BinaryIO:
        """A readable binary file object; raises KeyError when the key is unknown."""

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...


def blob_key(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FileBlobStore:
    """Blobs under root/ab/cd/<sha256>. Writes go to a temporary file in root/tmp then are renamed
    into place, so a reader never sees a half-written blob even if the writer dies."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._tmp = self.root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise KeyError(f"not a blob key: {key!r}")
        return self.root / key[:2] / key[2:4] / key

    def put(self, data: bytes) -> str:
        key = blob_key(data)
        target = self.path(key)
        if target.exists():
            return key
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._tmp, prefix=key[:8], suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return key

    def open(self, key: str) -> BinaryIO:
        try:
            return open(self.path(key), "rb")
        except FileNotFoundError:
            raise KeyError(f"blob {key} is missing from {self.root}") from None

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)
