"""Read one file's DICOM header and decide whether the catalog can index it.

Only cheap checks happen here (no pixel decoding): the data set parses, it is not truncated, it has
the UIDs the index needs, it carries pixel data (or is an encapsulated PDF), and a decoder for its
transfer syntax is installed. Decoding happens at volume assembly.
"""

from __future__ import annotations

import io
import threading
import warnings

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels.decoders.base import get_decoder
from pydicom.uid import UID, EncapsulatedPDFStorage, ImplicitVRLittleEndian, MediaStorageDirectoryStorage

from .index import InstanceMeta

PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
REQUIRED_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
# Documents indexed as non-volumetric series even though they carry no pixel data.
DOCUMENT_SOP_CLASSES = {EncapsulatedPDFStorage: "encapsulated PDF"}


_PARSE_LOCK = threading.Lock()


class Rejected(Exception):
    """The file cannot be indexed; str(exc) is the reason shown to the user."""


def read_dataset(data: bytes) -> Dataset:
    """Parse a whole file held in memory. Raises Rejected with a reason."""
    if not data:
        raise Rejected("empty file")
    # pydicom reports a file cut inside an undefined-length item only as a warning. Catching
    # warnings swaps process-wide state, so parses take turns (parsing holds the GIL anyway).
    with _PARSE_LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = pydicom.dcmread(io.BytesIO(data))
        except InvalidDicomError:
            # No 128-byte preamble and "DICM": may still be a bare data set (old or non-conformant).
            ds = _read_bare(data)
        except Exception as exc:  # pydicom raises many types on damaged input
            raise Rejected(f"corrupt: {type(exc).__name__}: {exc}") from None
    for w in caught:
        if "End of file reached" in str(w.message):
            raise Rejected(f"truncated: {w.message}")
    _check_complete(ds)
    return ds


def _read_bare(data: bytes) -> Dataset:
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception:
        raise Rejected("not DICOM: no DICM prefix and no parsable data set") from None
    if "SOPClassUID" not in ds and "SOPInstanceUID" not in ds:
        raise Rejected("not DICOM: no DICM prefix and no SOP Class/Instance UID")
    if not getattr(ds, "file_meta", None) or "TransferSyntaxUID" not in ds.file_meta:
        ds.file_meta = pydicom.dataset.FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    return ds


def _check_complete(ds: Dataset) -> None:
    """An element whose value is shorter than its declared length means the file was cut."""
    for elem in ds._dict.values():  # raw elements: before any value conversion
        length = getattr(elem, "length", None)
        value = getattr(elem, "value", None)
        if length is not None and length != 0xFFFFFFFF and isinstance(value, bytes) and len(value) < length:
            raise Rejected(f"truncated: element {elem.tag} has {len(value)} of {length} bytes")


def sop_class(ds: Dataset) -> str:
    uid = ds.get("SOPClassUID") or ds.file_meta.get("MediaStorageSOPClassUID", "")
    return str(uid)


def transfer_syntax(ds: Dataset) -> UID:
    return UID(ds.file_meta.get("TransferSyntaxUID", ImplicitVRLittleEndian))


def check_indexable(ds: Dataset) -> None:
    """Raise Rejected unless the data set can be indexed (and, for images, later decoded)."""
    cls = sop_class(ds)
    has_pixels = any(k in ds for k in PIXEL_KEYWORDS)
    if not has_pixels and cls not in DOCUMENT_SOP_CLASSES:
        what = "DICOMDIR media directory" if cls == MediaStorageDirectoryStorage else _sop_name(cls)
        raise Rejected(f"no pixel data ({what})")
    missing = [k for k in REQUIRED_UIDS if not str(ds.get(k, "")).strip()]
    if missing:
        raise Rejected(f"missing UIDs: {', '.join(missing)}")
    for keyword in (*REQUIRED_UIDS, "FrameOfReferenceUID"):
        if len(str(ds.get(keyword, "")).strip()) > 64:
            raise Rejected(f"invalid UID: {keyword} is longer than 64 characters")
    if has_pixels:
        _check_pixels(ds)


def _sop_name(cls: str) -> str:
    name = UID(cls).name if cls else ""
    return name if name and name != cls else (cls or "no SOP Class UID")


def _check_pixels(ds: Dataset) -> None:
    for keyword in ("Rows", "Columns", "BitsAllocated"):
        if not ds.get(keyword):
            raise Rejected(f"corrupt: pixel data without {keyword}")
    tsyntax = transfer_syntax(ds)
    if "PixelData" not in ds:
        return  # float pixel data is never compressed
    try:
        decoder = get_decoder(tsyntax)
    except NotImplementedError:
        raise Rejected(f"unsupported transfer syntax: {tsyntax.name} ({tsyntax})") from None
    if not decoder.is_available:
        raise Rejected(f"unsupported transfer syntax: {tsyntax.name} ({tsyntax}), no decoder installed")
    if not tsyntax.is_compressed:
        try:
            sizes = [
                ds.get(k) or 1
                for k in ("Rows", "Columns", "SamplesPerPixel", "NumberOfFrames", "BitsAllocated")
            ]
            bits = int(np.prod([int(v) for v in sizes], dtype=np.int64))
        except (TypeError, ValueError) as exc:
            raise Rejected(f"corrupt: bad image size attribute: {exc}") from None
        expected = (bits + 7) // 8
        got = len(ds.PixelData)
        if got < expected:
            raise Rejected(f"truncated: pixel data has {got} of {expected} bytes")


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    return "" if value is None else str(value).strip()


def _int(ds: Dataset, keyword: str, default: int = 0) -> int:
    try:
        value = ds.get(keyword)
        return default if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return default


def instance_meta(ds: Dataset) -> InstanceMeta:
    return InstanceMeta(
        patient_id=_text(ds, "PatientID"),
        patient_name=_text(ds, "PatientName"),
        birth_date=_text(ds, "PatientBirthDate")[:8],
        sex=_text(ds, "PatientSex")[:16],
        study_uid=_text(ds, "StudyInstanceUID"),
        study_date=_text(ds, "StudyDate")[:8],
        study_time=_text(ds, "StudyTime")[:16],
        study_description=_text(ds, "StudyDescription")[:256],
        accession_number=_text(ds, "AccessionNumber")[:64],
        series_uid=_text(ds, "SeriesInstanceUID"),
        modality=_text(ds, "Modality")[:16],
        series_description=_text(ds, "SeriesDescription")[:256],
        series_number=_int(ds, "SeriesNumber"),
        frame_of_reference_uid=_text(ds, "FrameOfReferenceUID"),
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        sop_class_uid=sop_class(ds),
        instance_number=_int(ds, "InstanceNumber"),
        number_of_frames=_int(ds, "NumberOfFrames", 1) or 1,
        transfer_syntax_uid=str(transfer_syntax(ds)),
    )
