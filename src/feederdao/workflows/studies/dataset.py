"""A study on disk: one Parquet dataset per table, partitioned by case and chunk, and a
manifest naming every finished chunk with its provenance hash.

::

    <out>/manifest.jsonl
    <out>/<table>/case=<case id>/chunk=<k>/part.parquet    (table: prices, …, periods, days)

Each file follows docs/outputs.md (long, ``time`` first and time-zone aware, names and ids,
units in the column names). A chunk's files are each written under a temporary name and
renamed into place; the manifest (a log of one JSON line per finished chunk, appended and
flushed) records the chunk only after all its files are in place, so a chunk is in the
manifest completely or not at all. The
dataset is for any Parquet reader: ``pandas.read_parquet("<out>/prices")`` gives the table
with ``case`` and ``chunk`` columns; :func:`read_study` adds the index of docs/outputs.md.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from feederdao.errors import ParameterError
from feederdao.workflows.outputs import TEXT
from feederdao.workflows.tables import TABLES, TIME

MANIFEST = "manifest.jsonl"
#: the tables of a study's dataset: the clearing's and the per-day summary
DATASET_TABLES = (*TABLES, "days")
FORMAT = "feederdao-study/1"


def partition(out: Path, table: str, case_id: str, chunk: int) -> Path:
    return out / table / f"case={case_id}" / f"chunk={chunk}"


def write_part(frame: pd.DataFrame, folder: Path) -> Path:
    """``frame`` (long) as ``folder/part.parquet``, written whole or not at all (under a
    temporary name of its own, so two writers of one chunk never share one); text columns as
    strings even when empty, so every part of a table has the same schema."""
    folder.mkdir(parents=True, exist_ok=True)
    out = frame.copy()
    for c in out.columns:
        if c in TEXT or out[c].dtype == object:
            out[c] = out[c].astype("string")
    path = folder / "part.parquet"
    tmp = folder / f".part.{os.getpid()}.{uuid.uuid4().hex}.partial"
    try:
        out.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _replay(path: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, str]]:
    """The manifest's header, finished chunks and failures: its lines replayed in order (the
    last word on a chunk wins; a line cut short by a crash is ignored)."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ParameterError(f"{str(path)!r} cannot be read: {exc.strerror}") from None
    header: dict[str, Any] = {}
    chunks: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    for k, line in enumerate(lines):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            if k == 0:
                raise ParameterError(f"{str(path)!r} is not a feederdao study manifest") from None
            continue  # a line cut short by a crash: its chunk is not recorded, so it runs again
        if k == 0:
            if not isinstance(entry, dict) or entry.get("format") != FORMAT:
                raise ParameterError(f"{str(path)!r} is not a feederdao study manifest")
            header = entry
            continue
        key = str(entry.get("key"))
        if entry.get("event") == "done":
            chunks[key] = entry["record"]
            failed.pop(key, None)
        elif entry.get("event") == "failed":
            chunks.pop(key, None)
            failed[key] = str(entry.get("error"))
        elif entry.get("event") == "dropped":
            chunks.pop(key, None)
            failed.pop(key, None)
    return header, chunks, failed


@dataclass
class Manifest:
    """What is on disk: each finished chunk (``case/chunk`` → its record, with ``digest``) and
    each chunk that failed after its retries (→ the error).

    The file is a log, one JSON line per event after a header line, appended and flushed to
    disk as each chunk finishes: recording a chunk costs one short write however large the
    study."""

    path: Path
    study: str
    chunks: dict[str, dict[str, Any]]
    failed: dict[str, str]

    @classmethod
    def open(cls, out: Path, study: str, resume: bool) -> Manifest:
        path = out / MANIFEST
        if not path.exists():
            path.write_text(json.dumps({"format": FORMAT, "study": study}) + "\n")
            return cls(path, study, {}, {})
        if not resume:
            raise ParameterError(
                f"{str(out)!r} already holds a study ({MANIFEST}); pass --resume to continue "
                "it, or choose another outputs.dir"
            )
        _, chunks, failed = _replay(path)
        if not path.read_bytes().endswith(b"\n"):  # end a line cut short before appending
            with path.open("a") as fh:
                fh.write("\n")
        return cls(path, study, chunks, failed)

    def done(self, key: str, digest: str, out: Path) -> bool:
        """The chunk ``key`` is on disk with this digest and all its files."""
        rec = self.chunks.get(key)
        return (
            rec is not None
            and rec.get("digest") == digest
            and all((out / f).is_file() for f in rec.get("files", []))
        )

    def add(self, key: str, record: dict[str, Any]) -> None:
        self.chunks[key] = record
        self.failed.pop(key, None)
        self._append({"event": "done", "key": key, "record": record})

    def fail(self, key: str, error: str) -> None:
        self.chunks.pop(key, None)
        self.failed[key] = error
        self._append({"event": "failed", "key": key, "error": error})

    def keep_only(self, keys: Iterable[str], out: Path) -> None:
        """Forget (and delete the files of) chunks the spec no longer has."""
        wanted = set(keys)
        for key in [k for k in [*self.chunks, *self.failed] if k not in wanted]:
            for f in self.chunks.pop(key, {}).get("files", []):
                shutil.rmtree((out / f).parent, ignore_errors=True)
            self.failed.pop(key, None)
            self._append({"event": "dropped", "key": key})

    def _append(self, entry: dict[str, Any]) -> None:
        with self.path.open("a") as fh:
            fh.write(json.dumps(entry, default=str) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def read_manifest(out: Path | str) -> dict[str, Any]:
    """The manifest of the study in ``out``: ``study``, ``chunks`` (key → record) and
    ``failed`` (key → error)."""
    path = Path(out) / MANIFEST
    if not path.is_file():
        raise ParameterError(f"{str(out)!r} holds no study ({MANIFEST} is missing)")
    header, chunks, failed = _replay(path)
    return {**header, "chunks": chunks, "failed": failed}


def read_study(out: Path | str, table: str = "prices") -> pd.DataFrame:
    """One table of a study's dataset, every finished chunk of every case, indexed by
    (case, time, element) as docs/outputs.md indexes a study's table, ``time`` in
    Europe/Berlin."""
    from zoneinfo import ZoneInfo

    if table not in DATASET_TABLES:
        raise ParameterError(f"table {table!r} is not one of {', '.join(DATASET_TABLES)}")
    manifest = read_manifest(out)
    files = sorted(
        f
        for rec in manifest["chunks"].values()
        for f in rec.get("files", [])
        if f.startswith(f"{table}/")
    )
    if not files:
        raise ParameterError(f"{str(out)!r} holds no {table!r} table (was it in outputs.tables?)")
    frames = []
    for f in files:
        part = pd.read_parquet(Path(out) / f)
        case = f.split("/")[1].removeprefix("case=")
        part.insert(0, "case", case)
        frames.append(part)
    frame = pd.concat(frames, ignore_index=True)
    for c in frame.columns:  # text as the other tables hold it (object), not pandas' string
        if isinstance(frame[c].dtype, pd.StringDtype):
            frame[c] = frame[c].astype(object).where(frame[c].notna(), None)
    if TIME in frame.columns:
        frame[TIME] = pd.to_datetime(frame[TIME], utc=True).dt.tz_convert(ZoneInfo("Europe/Berlin"))
    keys = ["case", TIME] if TIME in frame.columns else ["case"]
    for names in (("bid_id", "block"), ("device",), ("participant",), ("branch",), ("bus",)):
        if all(n in frame.columns for n in names):
            keys += list(names)
            break
    return frame.set_index(keys).sort_index()
