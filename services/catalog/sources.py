"""Turn what the user hands us (files, folders, zip archives, DICOMDIRs) into a stream of inputs,
one per file, each either readable or already rejected with a reason.

Zip entries are read in memory and never extracted, so no entry name can reach outside the data
directory; names that try to (absolute, `..`) are still rejected, as are archives that inflate
beyond fixed bounds (zip bombs).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pydicom
from pydicom.uid import MediaStorageDirectoryStorage

# Zip bomb bounds: one entry, a whole archive, and the inflation ratio of a large entry.
MAX_ENTRY_BYTES = 2 * 1024**3
MAX_ARCHIVE_BYTES = 64 * 1024**3
MAX_ENTRIES = 200_000
MAX_RATIO = 1000
_RATIO_FLOOR = 16 * 1024**2  # small entries may compress arbitrarily well without harm
_READ_CHUNK = 1024 * 1024
ARCHIVE_SEPARATOR = "!"  # "scan.zip!DICOM/IM0001"


@dataclass
class Input:
    """One file to ingest: `read()` returns its bytes, or `rejected` already says why not."""

    path: str
    read: Callable[[], bytes] | None = None
    rejected: str = ""


def is_zip(head: bytes) -> bool:
    return head[:4] in (b"PK\x03\x04", b"PK\x05\x06")


def _file_reader(path: Path) -> Callable[[], bytes]:
    return path.read_bytes


def iter_paths(paths: Iterable[str | os.PathLike], *, expand_archives: bool = True) -> Iterator[Input]:
    """Every file under the given paths, once. Folders are walked recursively (sorted, so results
    come in a stable order); a DICOMDIR also pulls in the files it references."""
    seen: set[Path] = set()

    def emit(path: Path, explicit: bool = False) -> Iterator[Input]:
        # A file named on the command line always gets its result; found files are read once.
        key = path.resolve()
        if key in seen and not explicit:
            return
        seen.add(key)
        try:
            with open(path, "rb") as f:
                head = f.read(132)
        except OSError as exc:
            yield Input(str(path), rejected=f"unreadable: {exc.strerror or exc}")
            return
        if expand_archives and is_zip(head):
            yield from iter_zip(str(path), lambda: zipfile.ZipFile(path))
            return
        yield Input(str(path), read=_file_reader(path))
        # The standard names a media directory "DICOMDIR"; only such files are opened twice.
        if path.name.upper() == "DICOMDIR":
            for ref in dicomdir_references(path):
                yield from ([ref] if isinstance(ref, Input) else emit(ref))

    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    yield from emit(Path(root) / name)
        elif path.exists():
            yield from emit(path, explicit=True)
        else:
            yield Input(str(path), rejected="no such file or directory")


def dicomdir_references(path: Path) -> list[Path | Input]:
    """Files a DICOMDIR references (ReferencedFileID, relative to its folder). Missing ones come
    back as rejected Inputs. An ordinary DICOM file yields nothing."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception:
        return []
    if str(ds.file_meta.get("MediaStorageSOPClassUID", "")) != MediaStorageDirectoryStorage:
        return []
    refs: list[Path | Input] = []
    for record in ds.get("DirectoryRecordSequence", []):
        file_id = record.get("ReferencedFileID")
        if not file_id:
            continue
        parts = [file_id] if isinstance(file_id, str) else list(file_id)
        found = _resolve_case_insensitive(path.parent, parts)
        if found is None:
            refs.append(
                Input(str(path.parent.joinpath(*parts)), rejected="referenced by DICOMDIR but missing")
            )
        else:
            refs.append(found)
    return refs


def _resolve_case_insensitive(base: Path, parts: list[str]) -> Path | None:
    """CD file IDs are upper-case ISO 9660 names; the copy on disk may have any case."""
    current = base
    for part in parts:
        if part in ("", ".", "..") or "/" in part or "\\" in part:
            return None
        exact = current / part
        if exact.exists():
            current = exact
            continue
        try:
            match = next((c for c in current.iterdir() if c.name.upper() == part.upper()), None)
        except OSError:
            return None
        if match is None:
            return None
        current = match
    return current if current.is_file() else None


def unsafe_entry_reason(name: str) -> str:
    """Why a zip entry name must not be used, or '' when it is fine."""
    if "\x00" in name:
        return "unsafe path in archive: NUL byte"
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or (len(normalized) > 1 and normalized[1] == ":"):
        return f"unsafe path in archive: absolute path {name!r}"
    if ".." in PurePosixPath(normalized).parts:
        return f"unsafe path in archive: {name!r} escapes the archive root"
    return ""


def iter_zip(label: str, open_zip: Callable[[], zipfile.ZipFile]) -> Iterator[Input]:
    """One Input per file entry of the archive, read lazily under the zip-bomb bounds."""
    try:
        archive = open_zip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        yield Input(label, rejected=f"corrupt: bad zip archive: {exc}")
        return
    budget = [MAX_ARCHIVE_BYTES]
    with archive:
        entries = [info for info in archive.infolist() if not info.is_dir()]
        if len(entries) > MAX_ENTRIES:
            yield Input(label, rejected=f"archive too large: {len(entries)} entries (limit {MAX_ENTRIES})")
            return
        for info in entries:
            path = f"{label}{ARCHIVE_SEPARATOR}{info.filename}"
            reason = unsafe_entry_reason(info.filename)
            if not reason and (info.external_attr >> 16) & 0o170000 == 0o120000:
                reason = "unsafe path in archive: symbolic link"
            if reason:
                yield Input(path, rejected=reason)
                continue
            data_or_reason = _read_entry(archive, info, budget)
            if isinstance(data_or_reason, str):
                yield Input(path, rejected=data_or_reason)
            elif is_zip(data_or_reason[:4]):
                yield Input(path, rejected="nested archive: unpack it first")
            else:
                yield Input(path, read=(lambda data=data_or_reason: data))


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: list[int]) -> bytes | str:
    """The entry's bytes, counting what is actually inflated rather than trusting the header."""
    limit = min(MAX_ENTRY_BYTES, budget[0])
    chunks: list[bytes] = []
    total = 0
    try:
        with archive.open(info) as f:
            while chunk := f.read(_READ_CHUNK):
                total += len(chunk)
                if total > limit:
                    return f"archive too large: entry inflates beyond {limit} bytes (zip bomb?)"
                if total > _RATIO_FLOOR and total > MAX_RATIO * max(info.compress_size, 1):
                    return f"archive too large: compression ratio above {MAX_RATIO} (zip bomb?)"
                chunks.append(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as exc:
        return f"corrupt: cannot read zip entry: {exc}"
    budget[0] -= total
    return b"".join(chunks)
