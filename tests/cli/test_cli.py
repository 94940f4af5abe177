import re

import pytest
from typer.testing import CliRunner

from feederdao.cli.main import app

runner = CliRunner()


def test_every_command_has_help() -> None:
    for args in (
        ["--help"],
        ["network", "--help"],
        ["network", "show", "--help"],
        ["demo", "--help"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, args
        assert "Usage" in result.output


def test_network_show_prints_summary_and_power_flow() -> None:
    result = runner.invoke(app, ["network", "show", "--net", "case33bw"])
    assert result.exit_code == 0, result.output
    assert "buses" in result.output and "33" in result.output
    assert "radial" in result.output
    assert "voltage min" in result.output and "0.913" in result.output


def test_unknown_network_is_one_clear_line() -> None:
    result = runner.invoke(app, ["network", "show", "--net", "nowhere"])
    assert result.exit_code == 2
    assert "unknown network 'nowhere'" in result.output
    assert "Traceback" not in result.output


def test_clear_with_a_bid_file_writes_results(tmp_path) -> None:  # type: ignore[no-untyped-def]
    book = tmp_path / "bids.csv"
    book.write_text(
        "bid_id,participant_id,bus,period,side,price_eur_per_mwh,quantity_mw\n"
        "a,bus17,17,0,buy,250,0.05\n"
        "a,bus17,17,0,buy,120,0.05\n"
        "b,bus5,5,1,buy,300,0.02\n"
    )
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        ["clear", "--net", "case33bw", "--bids", str(book), "--periods", "2", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "welfare" in result.output and "AC check" in result.output
    assert "all limits met" in result.output
    for name in ("prices", "voltages", "loadings", "dispatch", "bids", "settlement", "periods"):
        assert (out / f"{name}.csv").is_file()
    assert (out / "summary.json").is_file() and (out / "result.json").is_file()


def test_clear_with_a_bad_bid_names_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    book = tmp_path / "bids.csv"
    book.write_text(
        "bid_id,participant_id,bus,period,side,price_eur_per_mwh,quantity_mw\n"
        "a,bus17,99,0,buy,250,0.05\n"
    )
    result = runner.invoke(app, ["clear", "--net", "case33bw", "--bids", str(book)])
    assert result.exit_code == 2
    assert "bid 'a' bus: bus 99 does not exist" in result.output
    assert "Traceback" not in result.output


def test_bad_parameters_are_refused() -> None:
    result = runner.invoke(app, ["clear", "--net", "case33bw", "--v-min", "1.1", "--v-max", "1.0"])
    assert result.exit_code == 2
    assert "voltage band" in result.output


def test_study_writes_its_tables_and_prints_a_line_per_day(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "study"
    result = runner.invoke(app, ["study", "--net", "case33bw", "--days", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "day 1/1 2016-06-21: welfare" in result.output
    for name in ("prices", "voltages", "loadings", "dispatch", "bids", "settlement", "periods"):
        assert (out / f"{name}.csv").stat().st_size > 0
    assert len((out / "prices.csv").read_text().splitlines()) == 1 + 96 * 33
    assert len((out / "days.csv").read_text().splitlines()) == 2
    assert not list(out.glob("*.png"))  # plots and the page only with --report


def test_demo_smoke(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    assert "1-LV-rural1--2-sw" in result.output
    out = " ".join(result.output.split())
    assert "all limits met" in out
    assert "→ Executed" in out and "v_max_pu" in out  # the DAO voted the parameters used
    assert "41 of 41 setpoints confirmed by read-back (Basic256Sha256, SignAndEncrypt" in out
    deviation = float(out.split("largest difference ")[1].split(" pu")[0])
    assert deviation < 1e-6  # the simulator measures what the OPF's AC check computed
    # the day metered and settled on chain, one prosumer paid out to the last unit
    assert "books balance: yes" in out and "settled on schedule" in out
    paid = out.split(" withdrew ")[1].split(" EUR")[0]
    deposit = out.split(" = deposit ")[1].split(" EUR")[0]
    position = out.split(" + position ")[1].split(" EUR")[0]
    assert float(paid.replace(",", "")) == pytest.approx(
        float(deposit.replace(",", "")) + float(position.replace(",", "")), abs=1e-6
    )
    assert (tmp_path / "report" / "dlmp_heatmap.png").is_file()
    page = (tmp_path / "report" / "index.html").read_text()
    assert "Feeder map" in page and "Settlement" in page and page.count("<tr>") > 5
    assert page.count("data:image/png;base64,") == 5
    # the report is there to be shared: no OPC UA key or certificate in it
    kept = [p.name for p in (tmp_path / "report").rglob("*")]
    assert not [n for n in kept if n.endswith((".pem", ".der", ".key")) or "key" in n], kept
    assert (tmp_path / "report" / "opcua-audit.jsonl").is_file()


def test_errors_do_not_depend_on_the_terminal_width() -> None:
    """The same words on one line whether the terminal is 40 or 300 columns wide."""
    import os
    import subprocess
    import sys

    mode = "a storage mode whose name is far longer than a narrow terminal is wide"
    lines = []
    for columns in ("40", "300"):
        done = subprocess.run(
            [sys.executable, "-m", "feederdao.cli.main", "clear", "--storage", mode],
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": columns, "TERM": "xterm"},
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert done.stdout == ""
        lines.append(done.stderr)
    assert lines[0] == lines[1]
    assert lines[0] == f"error: --storage must be 'optimise' or 'profile', not {mode!r}\n"


def test_a_table_follows_the_width_of_the_run_not_of_the_import() -> None:
    """The CLI imported while COLUMNS was 40 (as another command or test may have left it),
    then run at 250 columns: the clearing table is laid out at 250, with no cell cut to "…"."""
    import os
    import subprocess
    import sys

    script = (
        "from typer.testing import CliRunner\n"
        "from feederdao.cli.main import app\n"
        "r = CliRunner().invoke(app, ['clear', '--net', 'case33bw', '--periods', '2'],"
        " env={'COLUMNS': '250'})\n"
        "print(r.exit_code)\n"
        "print(r.output)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "40"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    code, _, output = done.stdout.partition("\n")
    assert code == "0", output
    header = next(ln for ln in output.splitlines() if "congestion" in ln and "┃" in ln)
    for part in ("energy", "loss", "congestion", "voltage"):
        assert part in header, header
    assert not re.search(r"\w…", output), output  # a cut cell ends in "…"; a range has " … "
    assert max(len(ln) for ln in output.splitlines()) > 80
