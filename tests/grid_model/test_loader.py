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
