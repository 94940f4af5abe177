"""The engineer's command line: early checks, notes, tables, reports, progress, Ctrl-C, speed."""

from __future__ import annotations

import os
import re
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from feederdao.cli.main import LAZY, app, load_lazy

runner = CliRunner()
PY = [sys.executable, "-m", "feederdao.cli.main"]


def _one_line_error(result) -> str:  # type: ignore[no-untyped-def]
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    return str(lines[0])


def test_out_pointing_at_a_file_fails_before_any_work(tmp_path: Path) -> None:
    """The output folder is checked first: with a network that does not exist, the error is
    still about --out (nothing was loaded or solved), for clear and study alike."""
    taken = tmp_path / "results.csv"
    taken.write_text("keep me\n")
    for command in ("clear", "study"):
        line = _one_line_error(
            runner.invoke(app, [command, "--net", "nowhere", "--out", str(taken)])
        )
        assert line == f"error: --out {str(taken)!r} is a file; results go into a folder"
    assert taken.read_text() == "keep me\n"


def test_report_needs_an_output_folder() -> None:
    line = _one_line_error(runner.invoke(app, ["clear", "--net", "nowhere", "--report"]))
    assert "--report writes into the --out folder" in line


def test_periods_are_bounded_before_anything_is_loaded() -> None:
    line = _one_line_error(runner.invoke(app, ["clear", "--net", "nowhere", "--periods", "100000"]))
    assert "--periods 100000 is more than one clearing holds (at most 672" in line
    assert "feederdao study --days N" in line
    line = _one_line_error(runner.invoke(app, ["study", "--net", "nowhere", "--days", "400"]))
    assert "days 400 is more than the profiles hold (366" in line


@pytest.mark.parametrize(
    ("start", "words"),
    [
        ("2016-02-30", "--start 2016-02-30 is not a date: February 2016 has 29 days"),
        ("2015-02-29", "--start 2015-02-29 is not a date: February 2015 has 28 days"),
        ("2016-13-01", "--start 2016-13-01 is not a date: there is no month 13"),
        ("2016-06-21T25:00", "--start 2016-06-21T25:00 is not a time of day"),
        ("midsummer", "--start 'midsummer' is not a date or time: write YYYY-MM-DD"),
    ],
)
def test_a_start_that_is_not_a_date_says_so(start: str, words: str) -> None:
    line = _one_line_error(runner.invoke(app, ["clear", "--net", "nowhere", "--start", start]))
    assert words in line


def test_another_year_is_mapped_onto_the_profiles_and_the_cli_says_so(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["clear", "--net", "case33bw", "--periods", "2", "--start", "2019-06-21T12:00"],
        env={"COLUMNS": "250"},
    )
    assert result.exit_code == 0, result.output
    assert "SimBench's profiles are for 2016: the window from 2019-06-21 12:00 is read at " in (
        result.output
    )
    assert "placeholder day shape" in result.output
    out = tmp_path / "s"
    result = runner.invoke(
        app,
        ["study", "--net", "case33bw", "--start", "2019-06-21", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "note: SimBench's profiles are for 2016" in result.output
    assert "2019-06-21T00:00:00+02:00" in (out / "prices.csv").read_text()[:400]


def test_the_clear_table_says_which_buses_and_parts_it_shows() -> None:
    result = runner.invoke(
        app, ["clear", "--net", "case33bw", "--periods", "2"], env={"COLUMNS": "250"}
    )
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "the 12 of 33 buses whose DLMP varies most over the window" in out
    assert "its parts (energy, loss, congestion, voltage) as means over the window" in out
    header = next(ln for ln in result.output.splitlines() if "congestion" in ln and "┃" in ln)
    for part in ("energy", "loss", "congestion", "voltage"):
        assert part in header
    assert "no loading: no branch has a thermal rating" in out  # case33bw has none


def test_network_show_with_generators_matches_pandapower() -> None:
    """case9's generators hold their buses at 1.0 pu: runpp gives 0.9576 pu at least and
    4.95 MW of losses (a PQ model of them gave 0.9268 pu and 5.57 MW)."""
    result = runner.invoke(app, ["network", "show", "--net", "case9"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert re.search(r"voltage min +│ 0.9576 pu", result.output), result.output
    assert "4954.70 kW" in result.output
    assert "gen 0 at bus 1 holds 1.000 pu (a PV bus, as pandapower models a gen)" in result.output


def test_network_show_says_when_there_are_no_ratings() -> None:
    result = runner.invoke(app, ["network", "show", "--net", "case33bw"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "not known: no branch of this network has a thermal rating" in result.output
    assert "0.0 % on line 0" not in result.output


def test_clear_on_a_network_with_generators_works() -> None:
    result = runner.invoke(app, ["clear", "--net", "case9", "--periods", "4"])
    assert result.exit_code == 0, result.output
    assert "all limits met" in result.output


def test_serve_help_shows_the_service_table_literally() -> None:
    result = runner.invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "TOML file with a [service] table." in result.output


def test_lazy_commands_are_listed_with_their_own_help() -> None:
    listed = runner.invoke(app, ["--help"], env={"COLUMNS": "250"})
    for name, (_, _, help_line) in LAZY.items():
        command = load_lazy(name)
        own = " ".join((command.help or "").split("\n\n")[0].split())
        assert own == help_line, name
        assert name in listed.output


def test_help_imports_no_heavy_library() -> None:
    """``feederdao --help`` needs typer and rich only (the turnaround itself is measured in
    bench/cli.py)."""
    code = (
        "import sys\n"
        "from feederdao.cli.main import main\n"
        "sys.argv = ['feederdao', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('numpy', 'pandas', 'pandapower', 'asyncua', 'web3', 'scipy',"
        " 'sqlalchemy', 'fastapi') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in done.stdout, done.stdout[-500:]


def test_no_solver_or_library_chatter_reaches_the_terminal() -> None:
    done = subprocess.run(
        [*PY, "clear", "--net", "case33bw", "--periods", "4"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    for word in ("WARNING", "Warning", "HighsSparseMatrix", "Running HiGHS"):
        assert word not in done.stdout


def _png_size(path: Path) -> tuple[int, int]:
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return width, height


def test_clear_report_on_a_180_bus_feeder_stays_legible(tmp_path: Path) -> None:
    out = tmp_path / "r"
    result = runner.invoke(
        app,
        ["clear", "--net", "mv_oberrhein", "--periods", "4", "--out", str(out), "--report"],
    )
    assert result.exit_code == 0, result.output
    page = (out / "index.html").read_text()
    for words in (
        "Binding limits",
        "How to read the signs",
        "A positive amount",
        "is what the participant pays; a negative amount is what it is paid",
        "<th>congestion</th><th>voltage</th>",
    ):
        assert words in page
    n_buses = page.split("<h2>Prices</h2>")[1].split("<h2>")[0].count("<tr><td class='l'>")
    assert n_buses >= 170  # the DLMP table lists every bus
    for png in ("dlmp_heatmap.png", "map_dlmp.png", "map_voltage.png", "voltage_band.png"):
        width, height = _png_size(out / png)
        assert width <= 1100 and height <= 990, (png, width, height)
    assert page.count("data:image/png;base64,") == 5


def test_study_report_and_parquet(tmp_path: Path) -> None:
    out = tmp_path / "s"
    result = runner.invoke(
        app,
        ["study", "--net", "case33bw", "--out", str(out), "--report", "--format", "parquet"],
    )
    assert result.exit_code == 0, result.output
    page = (out / "index.html").read_text()
    assert "feederdao study: case33bw, 1 day(s) from 2016-06-21" in page
    assert "96 periods from 2016-06-21 00:00 to 2016-06-21 23:45 (CEST)" in page
    assert (out / "prices.parquet").is_file() and not (out / "prices.csv").exists()
    assert not list(out.glob(".*partial*"))


def _ctrl_c_reaches_it() -> None:
    """In the child before exec: SIGINT back to its default. A test run started in the
    background (``make test &``, a CI runner) ignores SIGINT, the child would inherit that,
    and Python would then install no KeyboardInterrupt handler at all."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for(proc: subprocess.Popen[str], pattern: str, timeout: float) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if re.search(pattern, line):
            return seen
    raise AssertionError(f"no {pattern!r} in {seen}")


def test_ctrl_c_during_a_study_keeps_every_finished_day(tmp_path: Path) -> None:
    """SIGINT after the first day: one line on stderr, exit 130, and the finished days in
    every table (whole days only), CSV and Parquet alike."""
    out = tmp_path / "study"
    proc = subprocess.Popen(
        [
            *PY,
            "study",
            "--net",
            "case33bw",
            "--days",
            "30",
            "--out",
            str(out),
            "--format",
            "csv,parquet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "120"},
        preexec_fn=_ctrl_c_reaches_it,
    )
    try:
        lines = _wait_for(proc, r"^day 1/30 2016-06-21: welfare", 120)
        assert lines[0].startswith("clearing 30 day(s) of case33bw")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    finished = int(re.search(r"interrupted: (\d+) of 30 day\(s\) finished, kept in", err)[1])  # type: ignore[index]
    assert 1 <= finished < 30
    import pandas as pd

    prices = pd.read_csv(out / "prices.csv")
    assert len(prices) == finished * 96 * 33
    assert len(pd.read_parquet(out / "prices.parquet")) == finished * 96 * 33
    assert len(pd.read_csv(out / "days.csv")) == finished
    assert not list(out.glob(".*partial*"))


def test_progress_is_a_bar_with_the_time_left_on_a_terminal(tmp_path: Path) -> None:
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [*PY, "study", "--net", "case33bw", "--days", "2", "--out", str(tmp_path / "s")],
        stdout=follower,
        stderr=follower,
        env={**os.environ, "COLUMNS": "120", "TERM": "xterm"},
    )
    os.close(follower)
    chunks = []
    try:
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
    finally:
        proc.wait(timeout=120)
        os.close(leader)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode(errors="replace"))
    assert proc.returncode == 0, text[-2000:]
    assert "days, elapsed" in text and "left" in text and "━" in text
    assert "day 2/2 2016-06-22: welfare" in text


def test_ctrl_c_while_the_network_loads_is_one_line(tmp_path: Path) -> None:
    """SIGINT in the first seconds (pandapower still importing, the grid loading): no
    traceback, one line, exit 130."""
    proc = subprocess.Popen(
        [*PY, "study", "--net", "1-LV-rural1--2-sw", "--days", "3", "--out", str(tmp_path / "s")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "120"},
        preexec_fn=_ctrl_c_reaches_it,
    )
    try:
        _wait_for(proc, r"^clearing 3 day\(s\) of 1-LV-rural1--2-sw", 60)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("interrupted:")
