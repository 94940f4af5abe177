"""A study's work: every case split into chunks of consecutive days, each with the hash of
everything its results depend on (the manifest compares it on ``--resume``).

A chunk of days ``[first, first + n)`` is cleared as the serial study would clear them, each
day's storage starting where the previous day left it, except for the chunk's first day:
its storage starts where a **warm-up** of ``warmup_days`` days before it (cleared, not
written) leaves it, the warm-up itself starting from the devices' own initial state. The first
chunk of a case has no days before it and so no warm-up: it equals the serial run exactly.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

import feederdao
from feederdao.workflows.studies.spec import Case, StudySpec, file_digest


@dataclass(frozen=True)
class Chunk:
    """Days ``first`` to ``first + days − 1`` (0-based from the study's start) of a case,
    cleared after ``warmup`` days before them."""

    case: Case
    index: int
    first: int
    days: int
    warmup: int
    digest: str

    @property
    def key(self) -> str:
        return f"{self.case.case_id}/{self.index}"


def plan(spec: StudySpec) -> tuple[Chunk, ...]:
    """Every chunk of every case, case by case, in day order."""
    out = []
    common = _common(spec)
    for case in spec.cases():
        for index, first in enumerate(range(0, spec.days, spec.chunk_days)):
            days = min(spec.chunk_days, spec.days - first)
            warmup = min(spec.warmup_days, first)
            identity = {
                **common,
                "case": _case(case),
                "first": spec.day(first).isoformat(),
                "days": days,
                "warmup": warmup,
            }
            digest = hashlib.sha256(
                json.dumps(identity, sort_keys=True, default=str).encode()
            ).hexdigest()
            out.append(Chunk(case, index, first, days, warmup, digest))
    return tuple(out)


def _case(case: Case) -> dict[str, Any]:
    return {
        "id": case.case_id,
        "net": case.net,
        "net_file": _digest_if_file(case.net),
        "scenario": asdict(case.scenario),
        "parameters": case.parameters,
    }


def _common(spec: StudySpec) -> dict[str, Any]:
    return {
        "feederdao": feederdao.__version__,
        "seed": spec.seed,
        "participants": file_digest(spec.participants) if spec.participants else None,
        "options": spec.options,
        "tables": list(spec.tables),
    }


def _digest_if_file(net: str) -> str | None:
    from pathlib import Path

    path = Path(net)
    return file_digest(path) if path.suffix in (".json", ".m", ".p") and path.is_file() else None
