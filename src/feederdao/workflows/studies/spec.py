"""The study specification (TOML): what to clear, over which days, with what, and where to.

:func:`load_spec` reads a file, :func:`parse_spec` a dict; either returns a frozen
:class:`StudySpec` or raises :class:`StudySpecError` naming the first wrong key
(``scenarios[1].pv_scale``). Nothing else in a study reads the TOML.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
import tomllib
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from feederdao.domain.clearing import STORAGE_ENDS, ClearingOptions
from feederdao.domain.params import GridParameters
from feederdao.errors import FeederDaoError, ParameterError
from feederdao.grid_model.loader import check_spec
from feederdao.workflows.clearing import parse_start
from feederdao.workflows.study import MAX_DAYS, day_start
from feederdao.workflows.tables import TABLES

SECTIONS = ("study", "scenarios", "bids", "parameters", "clearing", "outputs")
_SIMBENCH_SCENARIO = re.compile(r"^(.*-)([0-2])(-(?:sw|no_sw))$")
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")
PARAMETER_KEYS = tuple(f.name for f in fields(GridParameters) if f.name != "provenance")
# threads is the worker's to set (its own thread count), not the study's: it changes no result
OPTION_KEYS = tuple(f.name for f in fields(ClearingOptions) if f.name != "threads")
CHOICES = {"storage": ("optimise", "profile"), "storage_end": STORAGE_ENDS}


class StudySpecError(ParameterError):
    """A study specification is wrong: the message names the file and the key."""


@dataclass(frozen=True)
class Scenario:
    """A variant of every feeder: SimBench's future (0, 1, 2: the code's scenario digit
    replaced) and scalings of the loads' and the PV's profiles."""

    name: str
    simbench_scenario: int | None = None
    load_scale: float = 1.0
    pv_scale: float = 1.0

    def feeder(self, spec: str) -> str:
        """The ``--net`` spec of ``spec`` in this scenario."""
        if self.simbench_scenario is None:
            return spec
        m = _SIMBENCH_SCENARIO.match(spec)
        assert m is not None  # checked when the spec was read
        return f"{m[1]}{self.simbench_scenario}{m[3]}"


@dataclass(frozen=True)
class Case:
    """One feeder in one scenario with one set of grid parameters: a rolling day-ahead study."""

    case_id: str
    feeder: str  # the --net spec as the spec gives it
    net: str  # the --net spec this case opens (the scenario applied)
    scenario: Scenario
    parameters: dict[str, float]

    def grid_parameters(self) -> GridParameters:
        return GridParameters(**self.parameters)  # type: ignore[arg-type]


@dataclass(frozen=True)
class StudySpec:
    """A validated study: cases (feeders × scenarios × parameter sets), the window, the
    chunking, the book, the clearing options and the outputs."""

    name: str
    source: Path | None
    feeders: tuple[str, ...]
    start: datetime
    days: int
    chunk_days: int
    warmup_days: int
    scenarios: tuple[Scenario, ...]
    seed: int
    participants: Path | None
    parameters: dict[str, float | list[float]]
    options: dict[str, Any]
    out: Path
    tables: tuple[str, ...]

    def clearing_options(self) -> ClearingOptions:
        return ClearingOptions(**self.options)

    def day(self, k: int) -> datetime:
        return day_start(self.start, k)

    def cases(self) -> tuple[Case, ...]:
        """Feeders × scenarios × parameter sets (the sweep's lists as a Cartesian product),
        each with an id that is a folder name (``case=<id>`` in the dataset)."""
        fixed = {k: v for k, v in self.parameters.items() if not isinstance(v, list)}
        swept = {k: v for k, v in self.parameters.items() if isinstance(v, list)}
        sets = [
            {**fixed, **dict(zip(swept, combo, strict=True))}
            for combo in itertools.product(*swept.values())
        ]
        out = []
        for feeder, scenario, (k, values) in itertools.product(
            self.feeders, self.scenarios, enumerate(sets)
        ):
            tag = f"{_slug(feeder)}__{scenario.name}" + (f"__p{k}" if swept else "")
            out.append(Case(tag, feeder, scenario.feeder(feeder), scenario, values))
        return tuple(out)


def _slug(feeder: str) -> str:
    path = Path(feeder)
    text = path.stem if path.suffix in (".json", ".m", ".p") else feeder
    return _SLUG.sub("_", text).strip("_") or "feeder"


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _Reader:
    """Reads one table of the spec, naming each key it complains about."""

    def __init__(self, where: str, table: Any, prefix: str) -> None:
        if not isinstance(table, dict):
            raise StudySpecError(f"{where}: [{prefix}] must be a table")
        self.where = where
        self.table: dict[str, Any] = table
        self.prefix = prefix

    def fail(self, key: str, why: str) -> StudySpecError:
        return StudySpecError(f"{self.where}: {self.prefix}.{key} {why}")

    def only(self, allowed: tuple[str, ...]) -> None:
        for key in self.table:
            if key not in allowed:
                raise self.fail(key, f"is not a known key (known: {', '.join(allowed)})")

    def text(self, key: str, default: str | None = None) -> str:
        value = self.table.get(key, default)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "must be a non-empty text" if key in self.table else "is missing")
        return value.strip()

    def integer(self, key: str, default: int | None, low: int, high: int | None = None) -> int:
        value = self.table.get(key, default)
        if value is None:
            raise self.fail(key, "is missing")
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be a whole number, not {value!r}")
        if value < low or (high is not None and value > high):
            span = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise self.fail(key, f"= {value} must be {span}")
        return value

    def number(self, key: str, default: float, low: float = 0.0) -> float:
        value = self.table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, f"must be a number, not {value!r}")
        if not math.isfinite(value) or value < low:
            raise self.fail(key, f"= {value} must be a finite number of at least {low:g}")
        return float(value)


def load_spec(path: Path | str) -> StudySpec:
    """Read and validate the study spec at ``path`` (relative paths in it are relative to
    its folder)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise StudySpecError(f"{path}: the study spec does not exist") from None
    except OSError as exc:
        raise StudySpecError(f"{path}: the study spec cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise StudySpecError(f"{path}: the study spec is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise StudySpecError(f"{path}: the study spec is not valid TOML: {exc}") from None
    return parse_spec(raw, path)


def parse_spec(raw: dict[str, Any], source: Path | None = None) -> StudySpec:
    """Validate a spec given as a dict (the parsed TOML)."""
    where = str(source) if source is not None else "study spec"
    base = source.resolve().parent if source is not None else Path.cwd()
    for key in raw:
        if key not in SECTIONS:
            raise StudySpecError(
                f"{where}: [{key}] is not a section of a study spec (known: {', '.join(SECTIONS)})"
            )
    if "study" not in raw:
        raise StudySpecError(f"{where}: the [study] section is missing")
    st = _Reader(where, raw["study"], "study")
    st.only(("name", "feeders", "start", "days", "end", "chunk_days", "warmup_days"))
    name = st.text("name", "study")
    feeders = st.table.get("feeders")
    if (
        not isinstance(feeders, list)
        or not feeders
        or not all(isinstance(f, str) and f.strip() for f in feeders)
    ):
        raise st.fail("feeders", "must be a non-empty list of --net specs (text)")
    feeders = [_feeder(f.strip(), base) for f in feeders]
    for k, feeder in enumerate(feeders):
        try:
            check_spec(feeder)
        except FeederDaoError as exc:
            raise StudySpecError(f"{where}: study.feeders[{k}]: {exc}") from None
    if len(set(feeders)) != len(feeders):
        raise st.fail("feeders", "lists a feeder twice")
    start = _start(st)
    if "days" in st.table and "end" in st.table:
        raise st.fail("end", "and study.days both given: give one")
    if "end" in st.table:
        end = _date(st, "end")
        days = (end.date() - start.date()).days + 1
        if days < 1:
            raise st.fail("end", f"= {end:%Y-%m-%d} is before study.start")
        if days > MAX_DAYS:
            raise st.fail("end", f"gives {days} days, more than the profiles' year ({MAX_DAYS})")
    else:
        days = st.integer("days", 1, 1, MAX_DAYS)
    chunk_days = st.integer("chunk_days", min(days, 7), 1, MAX_DAYS)
    warmup_days = st.integer("warmup_days", 1, 0, 7)

    scenarios = _scenarios(where, raw.get("scenarios"), feeders)

    bd = _Reader(where, raw.get("bids", {}), "bids")
    bd.only(("seed", "participants"))
    seed = bd.integer("seed", 0, 0)
    participants = None
    if "participants" in bd.table:
        participants = base / bd.text("participants")
        if not participants.is_file():
            raise bd.fail("participants", f"= {str(participants)!r} is not a file")

    parameters = _parameters(where, raw.get("parameters", {}))
    options = _options(where, raw.get("clearing", {}))

    ou = _Reader(where, raw.get("outputs", {}), "outputs")
    ou.only(("dir", "tables"))
    out = base / ou.text("dir", name)
    tables = ou.table.get("tables", list(TABLES))
    if not isinstance(tables, list) or not tables:
        raise ou.fail("tables", f"must be a non-empty list of table names ({', '.join(TABLES)})")
    for t in tables:
        if t not in TABLES:
            raise ou.fail("tables", f"names {t!r}, not one of {', '.join(TABLES)}")
    if _SLUG.sub("_", name) != name:
        raise st.fail("name", f"= {name!r} may hold only letters, digits, '.', '_' and '-'")
    return StudySpec(
        name=name,
        source=source,
        feeders=tuple(feeders),
        start=start,
        days=days,
        chunk_days=chunk_days,
        warmup_days=warmup_days,
        scenarios=scenarios,
        seed=seed,
        participants=participants,
        parameters=parameters,
        options=options,
        out=out,
        tables=tuple(dict.fromkeys(tables)),
    )


def _feeder(spec: str, base: Path) -> str:
    """A file feeder relative to the spec's folder; any other ``--net`` spec as it is."""
    if Path(spec).suffix in (".json", ".m", ".p") and not Path(spec).is_absolute():
        return str(base / spec)
    return spec


def _date(st: _Reader, key: str) -> datetime:
    value = st.table.get(key)
    if not isinstance(value, str):
        value = str(value) if value is not None else None
    if value is None:
        raise st.fail(key, "is missing")
    try:
        return parse_start(value, f"{st.prefix}.{key}")
    except FeederDaoError as exc:
        raise StudySpecError(f"{st.where}: {exc}") from None


def _start(st: _Reader) -> datetime:
    if "start" not in st.table:
        raise st.fail("start", "is missing (the first day, YYYY-MM-DD)")
    return _date(st, "start")


def _scenarios(where: str, raw: Any, feeders: list[str]) -> tuple[Scenario, ...]:
    if raw is None:
        return (Scenario("base"),)
    if not isinstance(raw, list) or not raw:
        raise StudySpecError(f"{where}: scenarios must be one or more [[scenarios]] tables")
    out: list[Scenario] = []
    for k, table in enumerate(raw):
        sc = _Reader(where, table, f"scenarios[{k}]")
        sc.only(("name", "simbench_scenario", "load_scale", "pv_scale"))
        name = sc.text("name")
        if _SLUG.sub("_", name) != name:
            raise sc.fail("name", f"= {name!r} may hold only letters, digits, '.', '_' and '-'")
        if any(s.name == name for s in out):
            raise sc.fail("name", f"= {name!r} is used by another scenario")
        simbench = None
        if "simbench_scenario" in sc.table:
            simbench = sc.integer("simbench_scenario", None, 0, 2)
            plain = [f for f in feeders if not _SIMBENCH_SCENARIO.match(f)]
            if plain:
                raise sc.fail(
                    "simbench_scenario",
                    f"needs SimBench codes as feeders; {plain[0]!r} is not one",
                )
        out.append(
            Scenario(
                name,
                simbench,
                sc.number("load_scale", 1.0),
                sc.number("pv_scale", 1.0),
            )
        )
    return tuple(out)


def _parameters(where: str, raw: Any) -> dict[str, float | list[float]]:
    pr = _Reader(where, raw, "parameters")
    pr.only(PARAMETER_KEYS)
    out: dict[str, float | list[float]] = {}
    for key, value in pr.table.items():
        values = value if isinstance(value, list) else [value]
        if not values:
            raise pr.fail(key, "is an empty sweep: give one value or a list of values")
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise pr.fail(key, f"must be a number or a list of numbers, not {v!r}")
        out[key] = [float(v) for v in values] if isinstance(value, list) else float(value)
        if key == "clearing_interval_s":
            raise pr.fail(key, "is fixed by the profiles (900 s) in a study")
    fixed = {k: v for k, v in out.items() if not isinstance(v, list)}
    swept = {k: v for k, v in out.items() if isinstance(v, list)}
    for combo in itertools.product(*swept.values()):
        chosen: dict[str, float] = {**fixed, **dict(zip(swept, combo, strict=True))}
        try:
            GridParameters(**chosen)  # type: ignore[arg-type]
        except FeederDaoError as exc:
            keys = ", ".join(f"parameters.{k} = {v:g}" for k, v in chosen.items())
            raise StudySpecError(f"{where}: {keys}: {exc}") from None
    return out


def _options(where: str, raw: Any) -> dict[str, Any]:
    op = _Reader(where, raw, "clearing")
    op.only(OPTION_KEYS)
    defaults = ClearingOptions()
    out: dict[str, Any] = {}
    for key, value in op.table.items():
        default = getattr(defaults, key)
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise op.fail(key, f"must be true or false, not {value!r}")
        elif isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int):
                raise op.fail(key, f"must be a whole number, not {value!r}")
        elif isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise op.fail(key, f"must be a number, not {value!r}")
            value = float(value)
        elif key in CHOICES and value not in CHOICES[key]:
            choices = " or ".join(repr(c) for c in CHOICES[key])
            raise op.fail(key, f"must be {choices}, not {value!r}")
        out[key] = value
    try:
        ClearingOptions(**out)
    except FeederDaoError as exc:
        raise StudySpecError(f"{where}: [clearing] {exc}") from None
    return out
