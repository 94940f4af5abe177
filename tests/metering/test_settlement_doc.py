"""docs/settlement.md runs as written: its Python blocks in order, then its commands in the
same folder (they read the evidence the blocks wrote)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.test_docs import ROOT, blocks, commands

DOC = ROOT / "docs" / "settlement.md"


def test_settlement_doc_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "doc_settlement"}
    for k, code in enumerate(blocks(DOC, "python")):
        exec(compile(code, f"settlement.md block {k + 1}", "exec"), namespace)
    printed = capsys.readouterr().out
    assert "['bad-signature']" in printed and "['device-not-registered']" in printed
    argv = commands(DOC)
    assert argv, "the doc shows its commands"
    for line in argv:
        done = subprocess.run(line, cwd=tmp_path, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "result: the root matches" in done.stdout
