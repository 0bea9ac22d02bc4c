"""Evaluation archive: every validated evaluation, stored as it finishes (Intel HW-NAS, section 3).

The archive is a SQL database reached through SQLAlchemy: an embedded SQLite file by default
(write-ahead logging and a busy timeout make it safe for several processes on one machine), or
any server database by URL (``postgresql://...``) when many workers share one archive.

An evaluation is keyed by (architecture, evaluator settings): the same architecture is never
validated twice under the same settings, whichever study asked first. A study is one search;
it owns the evaluations it paid for (its budget) and a checkpoint of its search state (JSON
data, ``search.checkpoint``, never code), so a killed search resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Float,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


def settings_key(settings: Mapping[str, Any]) -> str:
    """Stable short id of an evaluator's settings (what makes two evaluations the same)."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Evaluation:
    """One evaluation of one architecture.

    Attributes:
        arch: the architecture (the space's own string form).
        metrics: metric name -> value; ``None`` marks a value that could not be measured.
        evaluator: which evaluator produced it (``validation:nb201_table``, ``predictor:ridge``).
        settings: the evaluator's settings (table source, columns, device settings).
        study: the study that paid for it.
        duration_s: wall time of the evaluation.
        created_at: UNIX time when it finished.
        id: position in the archive (order of completion).
    """

    arch: str
    metrics: dict[str, float | None]
    evaluator: str
    settings: dict[str, Any] = field(default_factory=dict)
    study: str = ""
    duration_s: float = 0.0
    created_at: float = 0.0
    id: int | None = None

    def content(self) -> tuple:
        """What an evaluation is, without when and how long (for comparing archives)."""
        return (self.arch, json.dumps(self.metrics, sort_keys=True), self.evaluator, self.study)


class _Base(DeclarativeBase):
    pass


class _EvaluationRow(_Base):
    __tablename__ = "evaluations"
    __table_args__ = (UniqueConstraint("arch", "settings_key", name="one_per_arch_and_settings"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    arch: Mapped[str] = mapped_column(String(1000), index=True)
    settings_key: Mapped[str] = mapped_column(String(32), index=True)
    study: Mapped[str] = mapped_column(String(200), index=True)
    evaluator: Mapped[str] = mapped_column(String(200))
    metrics: Mapped[str] = mapped_column(Text)
    settings: Mapped[str] = mapped_column(Text)
    duration_s: Mapped[float] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float)

    def to_evaluation(self) -> Evaluation:
        return Evaluation(
            arch=self.arch,
            metrics=json.loads(self.metrics),
            evaluator=self.evaluator,
            settings=json.loads(self.settings),
            study=self.study,
            duration_s=self.duration_s,
            created_at=self.created_at,
            id=self.id,
        )


class _StudyRow(_Base):
    __tablename__ = "studies"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    info: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)


class _StateRow(_Base):
    __tablename__ = "states"
    study: Mapped[str] = mapped_column(String(200), primary_key=True)
    step: Mapped[int] = mapped_column(Integer)
    blob: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[float] = mapped_column(Float)


class Archive:
    """SQL store of evaluations, studies and search checkpoints.

    Args:
        url: SQLAlchemy URL, e.g. ``sqlite:///outputs/archive.sqlite`` (the folder is created)
            or ``postgresql+psycopg://user@host/db``.
        busy_timeout_s: how long a writer waits for another process's lock (SQLite).
    """

    def __init__(self, url: str, busy_timeout_s: float = 60.0) -> None:
        self.url = url
        self.busy_timeout_s = busy_timeout_s
        if not isinstance(url, str) or "://" not in url:
            raise ValueError(
                f"archive url must be a SQLAlchemy URL such as 'sqlite:///path/archive.sqlite' "
                f"or 'postgresql://user@host/db', got {url!r}"
            )
        is_sqlite = url.startswith("sqlite")
        if is_sqlite and url not in ("sqlite://", "sqlite:///:memory:"):
            Path(url.split(":///", 1)[1]).expanduser().parent.mkdir(parents=True, exist_ok=True)
        connect_args = {"timeout": busy_timeout_s} if is_sqlite else {}
        self.engine = create_engine(url, connect_args=connect_args)
        if is_sqlite:
            event.listen(self.engine, "connect", self._sqlite_pragmas)
        _Base.metadata.create_all(self.engine)

    def _sqlite_pragmas(self, dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets readers run while one process writes; the busy timeout makes concurrent
        # writers wait for each other instead of failing with "database is locked".
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_s * 1000)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    def __repr__(self) -> str:
        return f"Archive({self.url!r})"

    def __getstate__(self) -> dict:
        return {"url": self.url, "busy_timeout_s": self.busy_timeout_s}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def close(self) -> None:
        self.engine.dispose()

    # Evaluations ---------------------------------------------------------------------------
    def lookup(self, archs: Iterable[str], key: str) -> dict[str, Evaluation]:
        """Stored evaluations of ``archs`` under the settings ``key``, by arch."""
        archs = list(dict.fromkeys(archs))
        out: dict[str, Evaluation] = {}
        with Session(self.engine) as session:
            for start in range(0, len(archs), 500):  # stay under SQL parameter limits
                stmt = select(_EvaluationRow).where(
                    _EvaluationRow.settings_key == key,
                    _EvaluationRow.arch.in_(archs[start : start + 500]),
                )
                out.update({r.arch: r.to_evaluation() for r in session.scalars(stmt)})
        return out

    def add(self, evaluation: Evaluation) -> tuple[Evaluation, bool]:
        """Store an evaluation as soon as it finishes.

        Returns:
            The stored evaluation and whether it was new. If another process stored the same
            (arch, settings) first, that one is returned and nothing is written.
        """
        key = settings_key(evaluation.settings)
        row = _EvaluationRow(
            arch=evaluation.arch,
            settings_key=key,
            study=evaluation.study,
            evaluator=evaluation.evaluator,
            metrics=json.dumps(evaluation.metrics),
            settings=json.dumps(evaluation.settings, sort_keys=True, default=str),
            duration_s=float(evaluation.duration_s),
            created_at=evaluation.created_at or time.time(),
        )
        with Session(self.engine) as session:
            session.add(row)
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                return self.lookup([evaluation.arch], key)[evaluation.arch], False
            return row.to_evaluation(), True

    def evaluations(self, study: str | None = None, key: str | None = None) -> list[Evaluation]:
        """Stored evaluations in order of completion, optionally of one study / settings."""
        stmt = select(_EvaluationRow).order_by(_EvaluationRow.id)
        if study is not None:
            stmt = stmt.where(_EvaluationRow.study == study)
        if key is not None:
            stmt = stmt.where(_EvaluationRow.settings_key == key)
        with Session(self.engine) as session:
            return [r.to_evaluation() for r in session.scalars(stmt)]

    # Studies -------------------------------------------------------------------------------
    def studies(self) -> dict[str, dict[str, Any]]:
        """Study name -> its recorded description (objectives, evaluator settings, ...)."""
        with Session(self.engine) as session:
            return {r.name: json.loads(r.info) for r in session.scalars(select(_StudyRow))}

    def study(self, name: str) -> dict[str, Any]:
        """Recorded description of one study; a clear error lists the stored studies."""
        studies = self.studies()
        if name not in studies:
            raise KeyError(f"no study {name!r} in archive {self.url}; studies: {sorted(studies)}")
        return studies[name]

    def open_study(self, name: str, info: Mapping[str, Any], resume: bool) -> bool:
        """Create study ``name``, or reopen it when resuming.

        Returns:
            Whether the study already existed (``True`` only when resuming).

        Raises:
            ValueError: the study exists and ``resume`` is false, or it was recorded with
                different objectives / settings than the resumed search uses.
        """
        info = json.loads(json.dumps(dict(info), sort_keys=True, default=str))
        with Session(self.engine) as session:
            row = session.get(_StudyRow, name)
            if row is None:
                session.add(_StudyRow(name=name, info=json.dumps(info), created_at=time.time()))
                try:
                    session.commit()
                except IntegrityError:  # another process created it a moment ago
                    session.rollback()
                    row = session.get(_StudyRow, name)
                else:
                    return False
            stored = json.loads(row.info)
        if not resume:
            raise ValueError(
                f"study {name!r} already exists in archive {self.url}; pass resume=true to "
                "continue it, or give the search another study name"
            )
        if stored != info:
            raise ValueError(
                f"cannot resume study {name!r}: it was recorded with {stored}, "
                f"this search uses {info}"
            )
        return True

    # Search checkpoints --------------------------------------------------------------------
    def save_state(self, study: str, step: int, blob: bytes) -> None:
        """Checkpoint a study's search state (replaces the previous one).

        ``blob`` is the caller's payload; the search writes :class:`search.checkpoint.SearchState`
        JSON and refuses anything else on resume.
        """
        with Session(self.engine) as session:
            session.merge(_StateRow(study=study, step=step, blob=blob, updated_at=time.time()))
            session.commit()

    def load_state(self, study: str) -> tuple[int, bytes] | None:
        """The study's last checkpoint as (step, blob), or ``None``."""
        with Session(self.engine) as session:
            row = session.get(_StateRow, study)
            return None if row is None else (row.step, row.blob)


def front_of(
    evaluations: Sequence[Evaluation], keys: Sequence[str], modes: Sequence[str]
) -> list[Evaluation]:
    """The non-dominated evaluations (all ``keys`` measured) under the given modes."""
    import numpy as np

    from search.pareto import non_dominated_mask, to_minimization

    done = [e for e in evaluations if all(e.metrics.get(k) is not None for k in keys)]
    if not done:
        return []
    F = to_minimization(np.array([[e.metrics[k] for k in keys] for e in done]), modes)
    return [e for e, keep in zip(done, non_dominated_mask(F), strict=True) if keep]
