"""docs/service.md read by a test: its settings table is the settings (names and defaults), its
snippets run, and the limits, health problems and reason codes it states are the code's."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest
from typer.testing import CliRunner

from feederdao.api.limits import RECURSION_LIMIT
from feederdao.cli.main import app as cli
from feederdao.workflows.market import ServiceSettings
from feederdao.workflows.market.system import PROBLEMS
from feederdao.workflows.market.wholesale import WholesaleSource, read_prices
from feederdao.workflows.reasons import REASONS

DOC = (Path(__file__).parents[2] / "docs" / "service.md").read_text()


def section(title: str) -> str:
    """The text under ``title`` up to the next heading of the same or a higher level."""
    start = DOC.index(title)
    level = title.split(" ")[0]
    ends = [DOC.find("\n" + "#" * n + " ", start + len(title)) for n in range(1, len(level) + 1)]
    found = [e for e in ends if e > 0]
    return DOC[start : min(found) if found else None]


def test_the_settings_table_is_the_settings() -> None:
    rows = re.findall(r"^\| (`[^|]+`) \|\s*([^|]*?)\s*\|", section("## Settings"), re.M)
    documented: dict[str, str] = {}
    for names, default in rows:
        found = re.findall(r"`([a-z_]+)`", names)
        values = [v.strip().strip("`") for v in default.split(",")]
        for k, name in enumerate(found):
            documented[name] = values[k] if len(values) == len(found) else values[0]
    defaults = {f.name: f.default for f in fields(ServiceSettings)}
    assert set(documented) == set(defaults)
    for name, value in defaults.items():
        text = documented[name]
        if value is None:
            assert text == "" or text.startswith("unset"), name
        else:
            assert text == str(value), (name, text, value)


def test_the_wholesale_snippets_run(tmp_path: Path) -> None:
    part = section("### Wholesale prices")
    toml, csv = re.findall(r"```(?:toml)?\n(.*?)```", part, re.S)
    (tmp_path / "prices.csv").write_text(csv)
    (tmp_path / "service.toml").write_text(toml)
    settings = ServiceSettings.load(tmp_path / "service.toml")
    assert settings.wholesale_prices == "prices.csv"
    source = read_prices(tmp_path / "prices.csv")
    assert source.kind == "file" and source.window(1, 28).import_eur_per_mwh[0] == 180
    assert WholesaleSource.of(ServiceSettings()).kind == "placeholder"
    assert '"wholesale_prices": "placeholder"' in part


def test_the_limits_health_problems_and_reasons_are_the_codes() -> None:
    limits = section("## Limits")
    s = ServiceSettings()
    assert f"`max_body_bytes` ({s.max_body_bytes // 1024} KiB)" in limits.replace("\n  ", " ")
    assert f"`max_json_depth` ({s.max_json_depth})" in limits
    assert f"back to {RECURSION_LIMIT}" in limits
    health = section("## Health and metrics")
    problems = re.findall(r"^\| `([a-z-]+)` \|", health, re.M)
    assert tuple(problems) == PROBLEMS
    reasons = re.findall(r"`([a-z-]+)`", health.split("a `reason` code:", 1)[1].split(".", 1)[0])
    assert tuple(reasons) == REASONS


@pytest.mark.parametrize("command", ["api-key", "api-keys", "revoke-key", "rotate-key", "upgrade"])
def test_the_documented_db_commands_exist(command: str) -> None:
    assert f"feederdao db {command}" in DOC
    result = CliRunner().invoke(cli, ["db", command, "--help"])
    assert result.exit_code == 0, result.output
