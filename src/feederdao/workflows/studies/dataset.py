"""A study on disk: one Parquet dataset per table, partitioned by case and chunk, and a
manifest naming every finished chunk with its provenance hash.

::

    <out>/manifest.json
    <out>/<table>/case=<case id>/chunk=<k>/part.parquet    (table: prices, …, periods, days)

Each file follows docs/outputs.md (long, ``time`` first and time-zone aware, names and ids,
units in the column names). A chunk's files are each written under a temporary name and
renamed into place; the manifest (rewritten whole, then renamed) records the chunk only after
all its files are in place, so a chunk is in the manifest completely or not at all. The
dataset is for any Parquet reader: ``pandas.read_parquet("<out>/prices")`` gives the table
with ``case`` and ``chunk`` columns; :func:`read_study` adds the index of docs/outputs.md.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from feederdao.errors import ParameterError
from feederdao.workflows.outputs import TEXT
from feederdao.workflows.tables import TABLES, TIME

MANIFEST = "manifest.json"
#: the tables of a study's dataset: the clearing's and the per-day summary
DATASET_TABLES = (*TABLES, "days")
FORMAT = "feederdao-study/1"


def partition(out: Path, table: str, case_id: str, chunk: int) -> Path:
    return out / table / f"case={case_id}" / f"chunk={chunk}"


def write_part(frame: pd.DataFrame, folder: Path) -> Path:
    """``frame`` (long) as ``folder/part.parquet``, written whole or not at all; text columns
    as strings even when empty, so every part of a table has the same schema."""
    folder.mkdir(parents=True, exist_ok=True)
    out = frame.copy()
    for c in out.columns:
        if c in TEXT or out[c].dtype == object:
            out[c] = out[c].astype("string")
    path = folder / "part.parquet"
    tmp = folder / ".part.parquet.partial"
    out.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return path


@dataclass
class Manifest:
    """What is on disk: each finished chunk (``case/chunk`` → its record, with ``digest``) and
    each chunk that failed after its retries (→ the error)."""

    path: Path
    study: str
    chunks: dict[str, dict[str, Any]]
    failed: dict[str, str]

    @classmethod
    def open(cls, out: Path, study: str, resume: bool) -> Manifest:
        path = out / MANIFEST
        if not path.exists():
            return cls(path, study, {}, {})
        if not resume:
            raise ParameterError(
                f"{str(out)!r} already holds a study ({MANIFEST}); pass --resume to continue "
                "it, or choose another outputs.dir"
            )
        try:
            raw = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ParameterError(f"{str(path)!r} cannot be read: {exc}") from None
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise ParameterError(f"{str(path)!r} is not a feederdao study manifest")
        return cls(path, study, dict(raw.get("chunks", {})), {})

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
        self.save()

    def fail(self, key: str, error: str) -> None:
        self.chunks.pop(key, None)
        self.failed[key] = error
        self.save()

    def keep_only(self, keys: Iterable[str], out: Path) -> None:
        """Forget (and delete the files of) chunks the spec no longer has."""
        wanted = set(keys)
        for key in [k for k in self.chunks if k not in wanted]:
            for f in self.chunks.pop(key).get("files", []):
                shutil.rmtree((out / f).parent, ignore_errors=True)
        self.save()

    def save(self) -> None:
        data = {
            "format": FORMAT,
            "study": self.study,
            "chunks": dict(sorted(self.chunks.items())),
            "failed": dict(sorted(self.failed.items())),
        }
        tmp = self.path.with_name(f".{self.path.name}.partial")
        tmp.write_text(json.dumps(data, indent=1, default=str))
        os.replace(tmp, self.path)


def read_manifest(out: Path | str) -> dict[str, Any]:
    path = Path(out) / MANIFEST
    if not path.is_file():
        raise ParameterError(f"{str(out)!r} holds no study ({MANIFEST} is missing)")
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ParameterError(f"{str(path)!r} cannot be read: {exc}") from None
    if data.get("format") != FORMAT:
        raise ParameterError(f"{str(path)!r} is not a feederdao study manifest")
    return data


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
