"""One output convention for ``clear`` and ``study`` (docs/outputs.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import feederdao as fd
from feederdao.cli.main import app
from feederdao.workflows.tables import TABLES

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")
#: every numeric column carries its unit in its name
UNITS = (
    "_mw",
    "_mvar",
    "_mva",
    "_mwh",
    "_pu",
    "_degree",
    "_percent",
    "_eur",
    "_eur_per_mwh",
    "_eur_per_mvarh",
    "_s",
)
#: the columns that name or count things rather than measure them
KEYS = {"bus_id", "block", "ac_iterations", "violations", "binding"}
NAMES = {"time": None, "bus": "bus_id", "branch": "branch_id", "device": "device_id"}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("outputs")
    runner = CliRunner()
    for command, extra in (("clear", ["--periods", "96"]), ("study", ["--days", "1"])):
        out = root / command
        result = runner.invoke(
            app,
            [command, "--net", "case33bw", "--out", str(out), "--format", "csv,parquet", *extra],
        )
        assert result.exit_code == 0, result.output
    return {"clear": root / "clear", "study": root / "study"}


@pytest.mark.parametrize("table", TABLES)
def test_clear_and_study_tables_follow_one_convention(written: dict[str, Path], table: str) -> None:
    frames = {}
    for command, folder in written.items():
        csv = pd.read_csv(folder / f"{table}.csv", keep_default_na=False)
        parquet = pd.read_parquet(folder / f"{table}.parquet")
        assert list(csv.columns) == list(parquet.columns), (command, table)
        assert csv.columns[0] == "time"  # long, time first
        assert csv["time"].map(lambda t: bool(ISO.match(t))).all(), csv["time"].iloc[0]
        assert str(parquet["time"].dt.tz) == "Europe/Berlin"
        assert csv["time"].iloc[0] == parquet["time"].iloc[0].isoformat()
        assert len(csv) == len(parquet)
        for column in parquet.columns:
            if pd.api.types.is_float_dtype(parquet[column]) and column not in KEYS:
                assert column.endswith(UNITS), (table, column)
        for name, ident in NAMES.items():  # names and pandapower ids side by side
            if name in parquet.columns and ident is not None:
                assert ident in parquet.columns, (table, name)
        frames[command] = parquet
    # the same table, the same columns, whether one clearing or a study wrote it
    assert list(frames["clear"].columns) == list(frames["study"].columns)
    pd.testing.assert_frame_equal(
        frames["clear"].dtypes.to_frame(), frames["study"].dtypes.to_frame()
    )


def test_summaries_and_the_per_day_table(written: dict[str, Path]) -> None:
    clear = json.loads((written["clear"] / "summary.json").read_text())
    assert clear["start"] == "2016-06-21T00:00:00+02:00"
    assert clear["end"] == "2016-06-22T00:00:00+02:00"
    study = json.loads((written["study"] / "summary.json").read_text())
    assert study["days_finished"] == 1 and study["interrupted"] is False
    days = pd.read_csv(written["study"] / "days.csv")
    assert days.columns[0] == "time" and ISO.match(days["time"].iloc[0])
    assert "welfare_eur" in days and "dlmp_max_eur_per_mwh" in days


def test_read_output_gives_back_the_api_tables(written: dict[str, Path]) -> None:
    res = fd.clear("case33bw", periods=96)
    for table in TABLES:
        for suffix in ("csv", "parquet"):
            back = fd.read_output(written["clear"] / f"{table}.{suffix}")
            mine = getattr(res, table)
            if table == "settlement":  # a file carries its window's start as time
                assert set(back.index.get_level_values("time")) == {res.start}
                back = back.droplevel("time")
            pd.testing.assert_frame_equal(back, mine)  # exact: floats, text, times and zone
            assert back.equals(mine), (table, suffix)


def test_write_and_report_from_python(tmp_path: Path) -> None:
    res = fd.clear("case33bw", periods=4)
    files = res.write(tmp_path / "out", formats=["parquet"])
    assert {f.name for f in files} == {
        *(f"{t}.parquet" for t in TABLES),
        "summary.json",
        "result.json",
    }
    page = res.report(tmp_path / "out")
    html = page.read_text()
    assert page.name == "index.html" and "DLMP" in html
    # the settlement table names each participant's bus as the network does
    row = res.result.settlement.rows[0]
    name = next(b.name for b in res.market.network.view.buses if b.index == row.bus)
    assert f"<td class='l'>{row.participant_id}</td><td class='l'>{name}</td>" in html
    with pytest.raises(fd.FeederDaoError, match="is a file; results go into a folder"):
        res.write(page)
    with pytest.raises(fd.FeederDaoError, match="output format xlsx is not one of csv, parquet"):
        res.write(tmp_path / "x", formats=["xlsx"])
