"""Our position trees are OpenZeppelin's: the same root and proofs as the JavaScript
``StandardMerkleTree`` (pinned in contracts/package.json) for the same values."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from feederdao.governance.merkle import PositionTree

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
SCRIPT = """
const { StandardMerkleTree } = require("@openzeppelin/merkle-tree");
const values = JSON.parse(process.argv[1]);
const tree = StandardMerkleTree.of(values, ["address", "int256"]);
const proofs = values.map((v, i) => tree.getProof(i));
console.log(JSON.stringify({ root: tree.root, proofs }));
"""


@pytest.mark.parametrize("n", [1, 2, 3, 8, 37])
def test_same_root_and_proofs_as_openzeppelin_js(n: int) -> None:
    node = shutil.which("node")
    assert node, "node is installed with the contracts' toolchain"
    positions = {"0x" + f"{(i * 2654435761) % 2**160:040x}": (i - n // 2) * 10**9 for i in range(n)}
    values = [[a, str(v)] for a, v in positions.items()]
    out = subprocess.run(
        [node, "-e", SCRIPT, json.dumps(values)],
        cwd=CONTRACTS,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    js = json.loads(out.stdout)
    tree = PositionTree.build(positions)
    assert "0x" + tree.root.hex() == js["root"]
    for (account, _), proof in zip(values, js["proofs"], strict=True):
        assert ["0x" + p.hex() for p in tree.proof(account)] == proof
