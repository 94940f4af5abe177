"""Load a pandapower network from one ``--net`` spec.

A spec is, in this order of lookup: a path to a pandapower JSON file or a MATPOWER case
(``.m``/``.mat``), the name of a pandapower built-in network (``case33bw``, ``cigre_lv``, ...),
or a SimBench code (``1-LV-rural1--0-sw``). A pandapower net you already hold is taken by
:func:`from_pandapower` (on a copy).

SimBench builds each grid by reading its whole data set (seconds), and pandapower's built-ins
come from its JSON files; with a ``cache_dir`` the grid is kept there as Parquet tables (its
profiles too), per SimBench or pandapower version, and read back from there next time
(:func:`default_cache_dir`).
"""

from __future__ import annotations

import contextlib
import copy
import importlib.metadata
import io
import json
import logging
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from feederdao.errors import NetworkLoadError

SourceKind = Literal["simbench", "builtin", "json", "matpower", "pandapower"]

# <hv level>-<voltage levels>-<type>-<subnets (may be empty)>-<scenario 0..2>-<sw|no_sw>
_SIMBENCH_CODE = re.compile(r"^[0-9]-[A-Za-z]+-[A-Za-z0-9]+-[A-Za-z0-9.]*-[0-2]-(sw|no_sw)$")


def _builtins() -> dict[str, Callable[[], Any]]:
    import pandapower.networks as pn

    return {
        "case33bw": pn.case33bw,
        "case4gs": pn.case4gs,
        "case9": pn.case9,
        "case14": pn.case14,
        "case30": pn.case30,
        "case118": pn.case118,
        "cigre_lv": pn.create_cigre_network_lv,
        "cigre_mv": lambda: pn.create_cigre_network_mv(with_der="pv_wind"),
        "cigre_mv_plain": pn.create_cigre_network_mv,
        "mv_oberrhein": pn.mv_oberrhein,
        "kerber_landnetz": pn.create_kerber_landnetz_kabel_1,
        "kerber_dorfnetz": pn.create_kerber_dorfnetz,
        "example_simple": pn.example_simple,
    }


BUILTIN_NAMES: tuple[str, ...] = (
    "case33bw",
    "case4gs",
    "case9",
    "case14",
    "case30",
    "case118",
    "cigre_lv",
    "cigre_mv",
    "cigre_mv_plain",
    "mv_oberrhein",
    "kerber_landnetz",
    "kerber_dorfnetz",
    "example_simple",
)


#: built-ins read from pandapower's JSON files (worth a cache); the Kerber grids are drawn at
#: random on every call and stay so
_CACHED_BUILTINS = frozenset(
    {"case33bw", "case4gs", "case9", "case14", "case30", "case118", "mv_oberrhein"}
)


@dataclass(frozen=True)
class LoadedNetwork:
    """A pandapower net with where it came from. Only ``grid_model`` and workflows hold one."""

    name: str
    source: SourceKind
    net: Any

    @property
    def has_simbench_profiles(self) -> bool:
        profiles = getattr(self.net, "profiles", None)
        return isinstance(profiles, dict) and bool(profiles)


@contextlib.contextmanager
def _quiet() -> Any:
    """Silence the chatter pandapower and simbench print while loading."""
    logger = logging.getLogger("pandapower")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def default_cache_dir() -> Path | None:
    """Where SimBench grids are cached: ``$FEEDERDAO_CACHE_DIR`` (empty: no cache), else
    ``$XDG_CACHE_HOME/feederdao``, else ``~/.cache/feederdao``."""
    env = os.environ.get("FEEDERDAO_CACHE_DIR")
    if env is not None:
        return Path(env) if env.strip() else None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "feederdao"


def from_pandapower(net: Any, name: str | None = None) -> LoadedNetwork:
    """A pandapower net held in memory, taken on a copy (the caller's net is never changed)."""
    if not hasattr(net, "bus") or not hasattr(net, "ext_grid"):
        raise NetworkLoadError(
            f"expected a pandapower net (with bus and ext_grid tables), got {type(net).__name__}"
        )
    own = getattr(net, "name", "") if name is None else name
    label = own if isinstance(own, str) and own.strip() else "network"
    return _checked(LoadedNetwork(label, "pandapower", copy.deepcopy(net)))


def check_spec(spec: str) -> None:
    """Raise :class:`NetworkLoadError` when ``spec`` cannot name a network, without loading
    it: a file that is not there, or a name that is neither a built-in nor a SimBench code."""
    spec = spec.strip()
    path = Path(spec)
    if path.suffix.lower() in {".json", ".m", ".mat"} or path.is_file():
        if not path.is_file():
            raise NetworkLoadError(f"network file {spec!r} does not exist")
        return
    if spec in BUILTIN_NAMES or _SIMBENCH_CODE.match(spec):
        return
    raise NetworkLoadError(
        f"unknown network {spec!r}: not a file, not a pandapower built-in "
        f"({', '.join(BUILTIN_NAMES)}), and not a SimBench code such as '1-LV-rural1--0-sw'"
    )


def load_network(spec: str, cache_dir: Path | None = None) -> LoadedNetwork:
    """Load the network ``spec`` names; raise :class:`NetworkLoadError` saying why not.

    ``cache_dir`` keeps extracted SimBench grids (see the module docstring)."""
    spec = spec.strip()
    if not spec:
        raise NetworkLoadError("no network given: pass a SimBench code, a built-in name or a file")
    path = Path(spec)
    suffix = path.suffix.lower()
    if suffix in {".json", ".m", ".mat"} or path.is_file():
        return _load_file(path)
    if spec in BUILTIN_NAMES:
        return _load_builtin(spec, cache_dir)
    if _SIMBENCH_CODE.match(spec):
        return _load_simbench(spec, cache_dir)
    raise NetworkLoadError(
        f"unknown network {spec!r}: not a file, not a pandapower built-in "
        f"({', '.join(BUILTIN_NAMES)}), and not a SimBench code such as '1-LV-rural1--0-sw'"
    )


def _load_builtin(name: str, cache_dir: Path | None = None) -> LoadedNetwork:
    import pandapower

    where = None
    if cache_dir is not None and name in _CACHED_BUILTINS:
        where = Path(cache_dir) / f"pandapower-{pandapower.__version__}" / name
        cached = _read_cached(where)
        if cached is not None:
            return _checked(LoadedNetwork(name, "builtin", cached))
    with _quiet():
        net = _builtins()[name]()
    if where is not None:
        _write_cached(where, net)
    return _checked(LoadedNetwork(name, "builtin", net))


def _load_simbench(code: str, cache_dir: Path | None = None) -> LoadedNetwork:
    where = None
    if cache_dir is not None:
        # the installed version, without importing simbench (2.3 s) for a cached grid
        try:
            version = importlib.metadata.version("simbench")
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
        where = Path(cache_dir) / f"simbench-{version}" / code
        cached = _read_cached(where)
        if cached is not None:
            return _checked(LoadedNetwork(code, "simbench", cached))
    import simbench

    try:
        with _quiet():
            net = simbench.get_simbench_net(code)
    except Exception as exc:  # simbench raises bare ValueError/KeyError/IndexError
        raise NetworkLoadError(f"unknown SimBench code {code!r}: {exc}") from exc
    if where is not None:
        _write_cached(where, net)
    return _checked(LoadedNetwork(code, "simbench", net))


def _read_cached(where: Path) -> Any | None:
    """The grid cached at ``where``, or None when there is none (or it cannot be read)."""
    manifest = where / "manifest.json"
    if not manifest.is_file():
        return None
    import pandapower as pp
    import pandas as pd

    try:
        spec = json.loads(manifest.read_text())
        with _quiet():
            net = pp.create_empty_network()
        for key, value in spec["values"].items():
            net[key] = value
        for key, objects in spec["tables"].items():
            df = pd.read_parquet(where / f"net.{key}.parquet")
            for column in objects:  # parquet types what pandas held as objects
                df[column] = df[column].astype(object)
            net[key] = df
        net.profiles = {
            t: pd.read_parquet(where / f"profiles.{t}.parquet") for t in spec["profiles"]
        }
    except Exception:  # a damaged or foreign cache entry: build the grid afresh
        return None
    return net


def _write_cached(where: Path, net: Any) -> None:
    """Keep ``net`` at ``where`` as Parquet tables (exact values, unlike JSON's 15 digits) and
    a manifest, written whole or not at all (a temporary folder renamed into place)."""
    import pandas as pd

    profiles = getattr(net, "profiles", None) or {}
    try:
        where.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=where.parent))
        try:
            tables: dict[str, list[str]] = {}
            values: dict[str, Any] = {}
            for key, value in net.items():
                if isinstance(value, pd.DataFrame):
                    value.to_parquet(tmp / f"net.{key}.parquet")
                    tables[key] = [str(c) for c in value.columns if value[c].dtype == object]
                elif not key.startswith("_") and key != "profiles":
                    values[key] = value
            names = [t for t, df in profiles.items() if df is not None]
            for t in names:
                profiles[t].to_parquet(tmp / f"profiles.{t}.parquet")
            manifest = {"values": values, "tables": tables, "profiles": names}
            (tmp / "manifest.json").write_text(json.dumps(manifest))
            os.replace(tmp, where)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    except (OSError, TypeError, ValueError, ImportError):
        pass  # no cache (read-only home, an odd column, a concurrent writer): nothing is lost


def _load_file(path: Path) -> LoadedNetwork:
    import pandapower as pp

    if not path.is_file():
        raise NetworkLoadError(f"network file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    try:
        with _quiet():
            if suffix in {".m", ".mat"}:
                from pandapower.converter.matpower import from_mpc

                net = from_mpc(str(path), f_hz=50)
                kind: SourceKind = "matpower"
            else:
                net = pp.from_json(str(path))
                kind = "json"
    except Exception as exc:
        raise NetworkLoadError(
            f"{str(path)!r} is not a readable pandapower JSON or MATPOWER network: {exc}"
        ) from exc
    if not hasattr(net, "bus"):
        raise NetworkLoadError(f"{str(path)!r} holds no pandapower network (no bus table)")
    return _checked(LoadedNetwork(path.stem, kind, net))


def _checked(loaded: LoadedNetwork) -> LoadedNetwork:
    net = loaded.net
    if len(net.bus) == 0:
        raise NetworkLoadError(f"network {loaded.name!r} has no buses")
    if len(net.ext_grid) == 0 or not net.ext_grid.in_service.any():
        raise NetworkLoadError(
            f"network {loaded.name!r} has no in-service ext_grid (slack/substation)"
        )
    return loaded
