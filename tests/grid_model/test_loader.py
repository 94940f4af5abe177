import subprocess
import sys
from pathlib import Path

import pandapower as pp
import pytest

from feederdao.errors import NetworkLoadError
from feederdao.grid_model import build_view, load_network
from tests.grid_model.feeders import three_bus

DATA = Path(__file__).parents[1] / "data"


def test_simbench_code(lv_rural) -> None:  # type: ignore[no-untyped-def]
    assert lv_rural.loaded.source == "simbench"
    assert lv_rural.loaded.has_simbench_profiles


@pytest.mark.parametrize("name", ["case33bw", "cigre_lv", "cigre_mv", "mv_oberrhein"])
def test_builtins(name: str) -> None:
    loaded = load_network(name)
    assert loaded.source == "builtin"
    view = build_view(loaded.net, name)
    assert len(view.buses) > 10


def test_pandapower_json(tmp_path: Path) -> None:
    path = tmp_path / "feeder.json"
    pp.to_json(three_bus(), str(path))
    loaded = load_network(str(path))
    assert loaded.source == "json" and loaded.name == "feeder"
    assert len(build_view(loaded.net).buses) == 3


def test_matpower_case() -> None:
    loaded = load_network(str(DATA / "case3.m"))
    assert loaded.source == "matpower"
    view = build_view(loaded.net)
    assert len(view.buses) == 3 and view.topology == "radial"


def test_unknown_code_names_it() -> None:
    with pytest.raises(NetworkLoadError, match="unknown network 'case999'"):
        load_network("case999")


def test_unknown_simbench_code() -> None:
    with pytest.raises(NetworkLoadError, match="unknown SimBench code '9-XX-nowhere--0-sw'"):
        load_network("9-XX-nowhere--0-sw")


@pytest.mark.parametrize("content", ["not json at all", '{"hello": "world"}', "[1, 2, 3]"])
def test_file_that_is_not_a_network(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bogus.json"
    path.write_text(content)
    with pytest.raises(NetworkLoadError, match="bogus.json"):
        load_network(str(path))


def test_missing_file() -> None:
    with pytest.raises(NetworkLoadError, match="does not exist"):
        load_network("no/such/feeder.json")


def test_simbench_grids_are_cached_exactly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A cached SimBench grid gives the same view and profiles as a fresh one (Parquet keeps
    every float exactly; pandapower's JSON would not); a damaged cache is built afresh."""
    from datetime import datetime

    import numpy as np

    from feederdao.grid_model import build_profiles, build_view, load_network

    code = "1-LV-rural1--2-sw"
    fresh = load_network(code)
    first = load_network(code, tmp_path)
    (entry,) = list(tmp_path.glob("simbench-*/*"))
    assert entry.name == code and (entry / "manifest.json").is_file()
    cached = load_network(code, tmp_path)
    for loaded in (first, cached):
        assert build_view(loaded.net, code) == build_view(fresh.net, code)
        a = build_profiles(loaded, build_view(loaded.net, code), datetime(2016, 6, 21), 96)
        b = build_profiles(fresh, build_view(fresh.net, code), datetime(2016, 6, 21), 96)
        assert np.array_equal(a.p_mw, b.p_mw) and np.array_equal(a.q_mvar, b.q_mvar)
    (entry / "net.bus.parquet").write_bytes(b"not parquet")
    again = load_network(code, tmp_path)
    assert build_view(again.net, code) == build_view(fresh.net, code)


def test_a_cached_simbench_grid_opens_without_importing_simbench(tmp_path: Path) -> None:
    """Importing simbench takes seconds; a grid in the cache is read without it (its folder is
    named by the installed version, read from the package's metadata)."""
    code = "1-LV-rural1--2-sw"
    load_network(code, tmp_path)
    script = (
        "import sys; from feederdao.grid_model import load_network; "
        f"net = load_network({code!r}, {str(tmp_path)!r}).net; "
        "print(len(net.bus), 'simbench' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=300
    )
    assert out.stdout.split() == [str(len(load_network(code).net.bus)), "False"], out.stderr


def test_a_pandapower_net_is_taken_on_a_copy() -> None:
    from feederdao.grid_model.loader import from_pandapower
    from tests.grid_model.feeders import three_bus

    net = three_bus()
    net.name = "my feeder"
    loaded = from_pandapower(net)
    assert loaded.name == "my feeder" and loaded.source == "pandapower"
    assert loaded.net is not net
    with pytest.raises(NetworkLoadError, match="expected a pandapower net"):
        from_pandapower({"bus": 1})
