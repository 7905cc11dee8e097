"""The index: patient / study / series / instance tables through SQLAlchemy 2.

SQLite (WAL mode) by default, PostgreSQL when the URL says so; the code is the same. Rows leave this
module as plain dataclasses so callers never hold a session open.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

UID = String(64)


class Base(DeclarativeBase):
    pass


class PatientRow(Base):
    __tablename__ = "patient"
    __table_args__ = (UniqueConstraint("patient_id", "patient_name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(64), index=True)
    patient_name: Mapped[str] = mapped_column(String(256), index=True)
    birth_date: Mapped[str] = mapped_column(String(8), default="")
    sex: Mapped[str] = mapped_column(String(16), default="")


class StudyRow(Base):
    __tablename__ = "study"
    id: Mapped[int] = mapped_column(primary_key=True)
    study_uid: Mapped[str] = mapped_column(UID, unique=True)
    patient_pk: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    study_date: Mapped[str] = mapped_column(String(8), default="", index=True)
    study_time: Mapped[str] = mapped_column(String(16), default="")
    description: Mapped[str] = mapped_column(String(256), default="")
    accession_number: Mapped[str] = mapped_column(String(64), default="", index=True)


class SeriesRow(Base):
    __tablename__ = "series"
    id: Mapped[int] = mapped_column(primary_key=True)
    series_uid: Mapped[str] = mapped_column(UID, unique=True)
    study_pk: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    modality: Mapped[str] = mapped_column(String(16), default="", index=True)
    description: Mapped[str] = mapped_column(String(256), default="")
    series_number: Mapped[int] = mapped_column(Integer, default=0)
    frame_of_reference_uid: Mapped[str] = mapped_column(UID, default="")
    # The assembled geometry (or why it is not a volume), as JSON; NULL = not computed since the
    # last instance arrived. Saves decoding or even reading the files on every GetSeries.
    volume_info: Mapped[str | None] = mapped_column(Text, nullable=True, default=None)


class InstanceRow(Base):
    __tablename__ = "instance"
    id: Mapped[int] = mapped_column(primary_key=True)
    sop_instance_uid: Mapped[str] = mapped_column(UID, unique=True)
    series_pk: Mapped[int] = mapped_column(ForeignKey("series.id"), index=True)
    sop_class_uid: Mapped[str] = mapped_column(UID, default="")
    instance_number: Mapped[int] = mapped_column(Integer, default=0)
    number_of_frames: Mapped[int] = mapped_column(Integer, default=1)
    transfer_syntax_uid: Mapped[str] = mapped_column(UID, default="")
    blob_key: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)


@dataclass(frozen=True)
class InstanceMeta:
    """What ingest extracts from a file's header, to be indexed."""

    patient_id: str
    patient_name: str
    birth_date: str
    sex: str
    study_uid: str
    study_date: str
    study_time: str
    study_description: str
    accession_number: str
    series_uid: str
    modality: str
    series_description: str
    series_number: int
    frame_of_reference_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    instance_number: int
    number_of_frames: int
    transfer_syntax_uid: str


@dataclass(frozen=True)
class StudyInfo:
    study_uid: str
    patient_name: str
    patient_id: str
    study_date: str
    description: str
    accession_number: str
    modalities: list[str]
    num_series: int
    num_instances: int


@dataclass(frozen=True)
class SeriesInfo:
    series_uid: str
    study_uid: str
    modality: str
    description: str
    series_number: int
    num_instances: int
    patient_id: str
    frame_of_reference_uid: str
    volume_info: dict[str, Any] | None


@dataclass(frozen=True)
class InstanceInfo:
    sop_instance_uid: str
    series_uid: str
    sop_class_uid: str
    instance_number: int
    number_of_frames: int
    transfer_syntax_uid: str
    blob_key: str
    size_bytes: int


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # NORMAL is durable across application crashes in WAL mode and much faster than FULL.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    return engine


def _like_pattern(text: str) -> str:
    """DICOM-style '*' and '?' wildcards to a LIKE pattern (escape char '\\'), matched case-insensitively."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


class Index:
    def __init__(self, url: str):
        if url.startswith("sqlite:///"):
            from pathlib import Path

            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(url)
        Base.metadata.create_all(self.engine)
        self._session = sessionmaker(self.engine, expire_on_commit=False)
        # Serialises this process's writers; across processes the unique constraints decide.
        self._write_lock = threading.Lock()

    def close(self) -> None:
        self.engine.dispose()

    # -- writes -------------------------------------------------------------------------------

    def add_instance(self, meta: InstanceMeta, blob_key: str, size_bytes: int) -> bool:
        """Index one instance. False when its SOPInstanceUID is already indexed (a duplicate)."""
        with self._write_lock:
            for attempt in range(3):
                try:
                    with self._session.begin() as s:
                        return self._add(s, meta, blob_key, size_bytes)
                except IntegrityError:
                    # Another process inserted the same patient/study/series/instance meanwhile.
                    if attempt == 2:
                        raise
        return False

    def _add(self, s: Session, meta: InstanceMeta, blob_key: str, size_bytes: int) -> bool:
        if s.scalar(select(InstanceRow.id).where(InstanceRow.sop_instance_uid == meta.sop_instance_uid)):
            return False
        series = s.scalar(select(SeriesRow).where(SeriesRow.series_uid == meta.series_uid))
        if series is None:
            study = s.scalar(select(StudyRow).where(StudyRow.study_uid == meta.study_uid))
            if study is None:
                patient = s.scalar(
                    select(PatientRow).where(
                        PatientRow.patient_id == meta.patient_id, PatientRow.patient_name == meta.patient_name
                    )
                )
                if patient is None:
                    patient = PatientRow(
                        patient_id=meta.patient_id,
                        patient_name=meta.patient_name,
                        birth_date=meta.birth_date,
                        sex=meta.sex,
                    )
                    s.add(patient)
                    s.flush()
                study = StudyRow(
                    study_uid=meta.study_uid,
                    patient_pk=patient.id,
                    study_date=meta.study_date,
                    study_time=meta.study_time,
                    description=meta.study_description,
                    accession_number=meta.accession_number,
                )
                s.add(study)
                s.flush()
            series = SeriesRow(
                series_uid=meta.series_uid,
                study_pk=study.id,
                modality=meta.modality,
                description=meta.series_description,
                series_number=meta.series_number,
                frame_of_reference_uid=meta.frame_of_reference_uid,
            )
            s.add(series)
            s.flush()
        else:
            series.volume_info = None
        s.add(
            InstanceRow(
                sop_instance_uid=meta.sop_instance_uid,
                series_pk=series.id,
                sop_class_uid=meta.sop_class_uid,
                instance_number=meta.instance_number,
                number_of_frames=meta.number_of_frames,
                transfer_syntax_uid=meta.transfer_syntax_uid,
                blob_key=blob_key,
                size_bytes=size_bytes,
            )
        )
        return True

    def set_volume_info(self, series_uid: str, info: dict[str, Any], num_instances: int) -> None:
        """Cache a series' volume info, unless instances arrived since it was computed."""
        with self._write_lock, self._session.begin() as s:
            series = s.scalar(select(SeriesRow).where(SeriesRow.series_uid == series_uid))
            if series is None:
                return
            count = s.scalar(select(func.count(InstanceRow.id)).where(InstanceRow.series_pk == series.id))
            if count == num_instances:
                series.volume_info = json.dumps(info)

    # -- reads --------------------------------------------------------------------------------

    def has_instance(self, sop_instance_uid: str) -> bool:
        with self._session() as s:
            return (
                s.scalar(select(InstanceRow.id).where(InstanceRow.sop_instance_uid == sop_instance_uid))
                is not None
            )

    def search_studies(
        self,
        *,
        patient_name: str = "",
        patient_id: str = "",
        date_from: str = "",
        date_to: str = "",
        modality: str = "",
        accession_number: str = "",
        limit: int = 100,
        offset: int = 0,
    ) -> list[StudyInfo]:
        q = select(StudyRow, PatientRow).join(PatientRow, StudyRow.patient_pk == PatientRow.id)
        if patient_name:
            q = q.where(func.lower(PatientRow.patient_name).like(_like_pattern(patient_name), escape="\\"))
        if patient_id:
            q = q.where(func.lower(PatientRow.patient_id).like(_like_pattern(patient_id), escape="\\"))
        if date_from:
            q = q.where(StudyRow.study_date >= date_from)
        if date_to:
            q = q.where(StudyRow.study_date <= date_to)
        if accession_number:
            q = q.where(StudyRow.accession_number == accession_number)
        if modality:
            q = q.where(
                StudyRow.id.in_(
                    select(SeriesRow.study_pk).where(func.upper(SeriesRow.modality) == modality.upper())
                )
            )
        q = q.order_by(StudyRow.study_date.desc(), StudyRow.id).limit(limit).offset(offset)
        with self._session() as s:
            out = []
            for study, patient in s.execute(q).all():
                series = s.execute(
                    select(SeriesRow.modality, func.count(InstanceRow.id))
                    .join(InstanceRow, InstanceRow.series_pk == SeriesRow.id)
                    .where(SeriesRow.study_pk == study.id)
                    .group_by(SeriesRow.id, SeriesRow.modality)
                ).all()
                out.append(
                    StudyInfo(
                        study_uid=study.study_uid,
                        patient_name=patient.patient_name,
                        patient_id=patient.patient_id,
                        study_date=study.study_date,
                        description=study.description,
                        accession_number=study.accession_number,
                        modalities=sorted({m for m, _ in series if m}),
                        num_series=len(series),
                        num_instances=sum(n for _, n in series),
                    )
                )
            return out

    def _series_query(self):
        count = (
            select(func.count(InstanceRow.id)).where(InstanceRow.series_pk == SeriesRow.id).scalar_subquery()
        )
        return (
            select(SeriesRow, StudyRow.study_uid, PatientRow.patient_id, count)
            .join(StudyRow, SeriesRow.study_pk == StudyRow.id)
            .join(PatientRow, StudyRow.patient_pk == PatientRow.id)
        )

    @staticmethod
    def _series_info(row) -> SeriesInfo:
        series, study_uid, patient_id, count = row
        return SeriesInfo(
            series_uid=series.series_uid,
            study_uid=study_uid,
            modality=series.modality,
            description=series.description,
            series_number=series.series_number,
            num_instances=int(count),
            patient_id=patient_id,
            frame_of_reference_uid=series.frame_of_reference_uid,
            volume_info=json.loads(series.volume_info) if series.volume_info else None,
        )

    def study_exists(self, study_uid: str) -> bool:
        with self._session() as s:
            return s.scalar(select(StudyRow.id).where(StudyRow.study_uid == study_uid)) is not None

    def list_series(self, study_uid: str) -> list[SeriesInfo]:
        q = self._series_query().where(StudyRow.study_uid == study_uid)
        q = q.order_by(SeriesRow.series_number, SeriesRow.id)
        with self._session() as s:
            return [self._series_info(r) for r in s.execute(q).all()]

    def get_series(self, series_uid: str) -> SeriesInfo | None:
        with self._session() as s:
            row = s.execute(self._series_query().where(SeriesRow.series_uid == series_uid)).first()
            return self._series_info(row) if row else None

    @staticmethod
    def _instance_info(row) -> InstanceInfo:
        inst, series_uid = row
        return InstanceInfo(
            sop_instance_uid=inst.sop_instance_uid,
            series_uid=series_uid,
            sop_class_uid=inst.sop_class_uid,
            instance_number=inst.instance_number,
            number_of_frames=inst.number_of_frames,
            transfer_syntax_uid=inst.transfer_syntax_uid,
            blob_key=inst.blob_key,
            size_bytes=inst.size_bytes,
        )

    def list_instances(self, series_uid: str) -> list[InstanceInfo]:
        q = (
            select(InstanceRow, SeriesRow.series_uid)
            .join(SeriesRow, InstanceRow.series_pk == SeriesRow.id)
            .where(SeriesRow.series_uid == series_uid)
            .order_by(InstanceRow.instance_number, InstanceRow.id)
        )
        with self._session() as s:
            return [self._instance_info(r) for r in s.execute(q).all()]

    def get_instance(self, sop_instance_uid: str) -> InstanceInfo | None:
        q = (
            select(InstanceRow, SeriesRow.series_uid)
            .join(SeriesRow, InstanceRow.series_pk == SeriesRow.id)
            .where(InstanceRow.sop_instance_uid == sop_instance_uid)
        )
        with self._session() as s:
            row = s.execute(q).first()
            return self._instance_info(row) if row else None
