"""Compiled contract artifacts (``contracts/build``, made by ``npm run build`` there)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from feederdao.governance.errors import ContractsNotBuiltError

DEFAULT_BUILD_DIR = Path(__file__).resolve().parents[3] / "contracts" / "build"


@cache
def artifact(name: str, build_dir: Path = DEFAULT_BUILD_DIR) -> dict[str, Any]:
    """``{"abi": [...], "bytecode": "0x…"}`` of contract ``name``."""
    path = build_dir / f"{name}.json"
    if not path.is_file():
        raise ContractsNotBuiltError(
            f"contract artifact {name} not found in {build_dir}: compile the contracts first "
            "(`make contracts`, or `npm install && npm run build` in contracts/)"
        )
    data: dict[str, Any] = json.loads(path.read_text())
    return data
