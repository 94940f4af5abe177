"""Load a pandapower network from one ``--net`` spec.

A spec is, in this order of lookup: a path to a pandapower JSON file or a MATPOWER case
(``.m``/``.mat``), the name of a pandapower built-in network (``case33bw``, ``cigre_lv``, ...),
or a SimBench code (``1-LV-rural1--0-sw``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from feederdao.errors import NetworkLoadError

SourceKind = Literal["simbench", "builtin", "json", "matpower"]

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


def load_network(spec: str) -> LoadedNetwork:
    """Load the network ``spec`` names; raise :class:`NetworkLoadError` saying why not."""
    spec = spec.strip()
    if not spec:
        raise NetworkLoadError("no network given: pass a SimBench code, a built-in name or a file")
    path = Path(spec)
    suffix = path.suffix.lower()
    if suffix in {".json", ".m", ".mat"} or path.is_file():
        return _load_file(path)
    builtins = _builtins()
    if spec in builtins:
        with _quiet():
            net = builtins[spec]()
        return _checked(LoadedNetwork(spec, "builtin", net))
    if _SIMBENCH_CODE.match(spec):
        return _load_simbench(spec)
    raise NetworkLoadError(
        f"unknown network {spec!r}: not a file, not a pandapower built-in "
        f"({', '.join(BUILTIN_NAMES)}), and not a SimBench code such as '1-LV-rural1--0-sw'"
    )


def _load_simbench(code: str) -> LoadedNetwork:
    import simbench

    try:
        with _quiet():
            net = simbench.get_simbench_net(code)
    except Exception as exc:  # simbench raises bare ValueError/KeyError/IndexError
        raise NetworkLoadError(f"unknown SimBench code {code!r}: {exc}") from exc
    return _checked(LoadedNetwork(code, "simbench", net))


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
