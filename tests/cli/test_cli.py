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
