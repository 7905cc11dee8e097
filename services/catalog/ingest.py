"""Ingest: every input file ends as exactly one result — indexed, duplicate, or rejected with a reason.

A bad file never aborts the batch; re-importing an instance that is already indexed (same
SOPInstanceUID) is a duplicate and changes nothing.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from voxcast.v1 import catalog_pb2

from .blobstore import BlobStore
from .dicomfile import Rejected, check_indexable, instance_meta, read_dataset
from .index import Index
from .sources import Input

log = logging.getLogger(__name__)
Status = catalog_pb2.IngestResult.Status
STATUS_NAMES = {Status.INDEXED: "indexed", Status.DUPLICATE: "duplicate", Status.REJECTED: "rejected"}


def rejected(path: str, reason: str) -> catalog_pb2.IngestResult:
    return catalog_pb2.IngestResult(path=path, status=Status.REJECTED, reason=reason)


def result_json(result: catalog_pb2.IngestResult) -> dict:
    """The object `voxcast import --json` prints for one file."""
    out = {"path": result.path, "status": STATUS_NAMES.get(result.status, "rejected")}
    if result.status == Status.REJECTED:
        out["reason"] = result.reason
    out["series_uid"] = result.series_uid or None
    if result.sop_instance_uid:
        out["sop_instance_uid"] = result.sop_instance_uid
    return out


class Ingestor:
    def __init__(self, index: Index, blobs: BlobStore):
        self.index = index
        self.blobs = blobs

    def ingest(self, inputs: Iterable[Input], workers: int = 4) -> Iterator[catalog_pb2.IngestResult]:
        """Results in input order. A few files are in flight at once so that reading, hashing and
        writing blobs (which release the GIL) overlap with parsing and indexing."""
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest") as pool:
            pending: deque[Future] = deque()
            for item in inputs:
                pending.append(pool.submit(self.ingest_one, item))
                if len(pending) > 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    def ingest_one(self, item: Input) -> catalog_pb2.IngestResult:
        if item.rejected:
            return rejected(item.path, item.rejected)
        try:
            data = item.read()
        except OSError as exc:
            return rejected(item.path, f"unreadable: {exc.strerror or exc}")
        try:
            return self._store(item.path, data)
        except Rejected as exc:
            return rejected(item.path, str(exc))
        except Exception as exc:  # never let one file abort the batch
            log.exception("ingest of %s failed", item.path)
            return rejected(item.path, f"corrupt: {type(exc).__name__}: {exc}")

    def _store(self, path: str, data: bytes) -> catalog_pb2.IngestResult:
        ds = read_dataset(data)
        check_indexable(ds)
        meta = instance_meta(ds)
        result = catalog_pb2.IngestResult(
            path=path,
            status=Status.DUPLICATE,
            study_uid=meta.study_uid,
            series_uid=meta.series_uid,
            sop_instance_uid=meta.sop_instance_uid,
        )
        if self.index.has_instance(meta.sop_instance_uid):
            return result
        key = self.blobs.put(data)
        if self.index.add_instance(meta, key, len(data)):
            result.status = Status.INDEXED
        return result
