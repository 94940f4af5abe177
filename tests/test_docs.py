"""The docs run as written: every ```python block of README.md and docs/*.md (a file's blocks in
order, in one namespace, in a fresh folder), the engineer quickstart's commands, and the
notebook in docs/."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)


def blocks(path: Path, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(path.read_text()) if lang == language]


def commands(path: Path) -> list[list[str]]:
    """The ``feederdao`` and ``python`` command lines of a doc's ```sh blocks (comments cut),
    with ``.venv/bin/`` pointing at this interpreter's folder."""
    out = []
    for body in blocks(path, "sh"):
        for line in body.splitlines():
            line = line.split(" #")[0].strip()
            if not line or line.startswith("#") or not line.startswith(".venv/bin/"):
                continue
            argv = shlex.split(line)
            argv[0] = str(BIN / argv[0].removeprefix(".venv/bin/"))
            out.append(argv)
    return out


WITH_PYTHON = [p for p in DOCS if blocks(p, "python")]


def test_the_harness_finds_the_docs() -> None:
    names = {p.name for p in WITH_PYTHON}
    assert {"README.md", "quickstart-engineer.md", "outputs.md", "clearing.md"} <= names
    assert len(commands(ROOT / "docs" / "quickstart-engineer.md")) >= 5


@pytest.mark.parametrize("doc", WITH_PYTHON, ids=lambda p: p.name)
def test_python_blocks_run(
    doc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict[str, object] = {"__name__": f"doc_{doc.stem}"}
    for k, code in enumerate(blocks(doc, "python")):
        try:
            exec(compile(code, f"{doc.name} block {k + 1}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"{doc.name}, python block {k + 1} failed: {exc!r}") from exc
    capsys.readouterr()


def files(path: Path) -> dict[str, str]:
    """The doc's ```toml blocks whose first line is ``# file: NAME``: the files its commands
    read, by name."""
    out = {}
    for body in blocks(path, "toml"):
        first, _, rest = body.partition("\n")
        if first.startswith("# file: "):
            out[first.removeprefix("# file: ").strip()] = rest
    return out


@pytest.mark.parametrize("name", ["quickstart-engineer.md", "studies.md"])
def test_the_docs_commands_run(tmp_path: Path, name: str) -> None:
    """Each doc's ``.venv/bin/…`` commands, in order, in a fresh folder holding the files the
    doc shows (```toml blocks headed ``# file: NAME``)."""
    env = {**os.environ, "COLUMNS": "120", "MPLBACKEND": "Agg"}
    doc = ROOT / "docs" / name
    for file, text in files(doc).items():
        (tmp_path / file).write_text(text)
    assert commands(doc), name
    for argv in commands(doc):
        done = subprocess.run(
            argv, cwd=tmp_path, capture_output=True, text=True, env=env, check=False
        )
        shown = " ".join(argv[1:])
        assert done.returncode == 0, f"{shown}: {done.stderr[-2000:]}"
        assert "Traceback" not in done.stderr, shown


def test_the_notebook_runs(tmp_path: Path) -> None:
    """docs/workbench.ipynb executed cell by cell in a real Jupyter kernel (nbclient), in a
    fresh folder."""
    import nbformat
    from nbclient import NotebookClient

    path = ROOT / "docs" / "workbench.ipynb"
    notebook = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    assert len(notebook.cells) >= 8
    NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(
        str(o.get("data", {}).get("text/plain", "")) + o.get("text", "") for o in outputs
    )
    assert "dlmp_eur_per_mwh" in text and "<Study case33bw" in text
