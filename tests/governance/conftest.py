"""A fresh DAO on the embedded chain (web3's EthereumTesterProvider) for every test."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from web3 import Web3

from feederdao.governance.chain import DevChain, connect
from feederdao.governance.dao import Dao, Proposal
from feederdao.governance.deploy import DaoAddresses, DaoConfig, deploy_dao

TOKEN = 10**18


@dataclass
class Dev:
    w3: Web3
    dao: Dao
    chain: DevChain
    addresses: DaoAddresses
    deployer: str
    guardian: str
    operator: str
    alice: str  # 40 % of the supply
    bob: str  # 30 %
    carol: str  # 1 token
    dave: str  # no tokens at first

    def ready(self, p: Proposal) -> Proposal:
        """Vote ``p`` through, queue it and wait out the Timelock delay."""
        self.chain.mine(2)
        self.dao.vote(self.alice, p.proposal_id, "for", "ok")
        self.chain.mine(21)
        self.dao.queue(p, self.alice)
        self.chain.advance_time(61)
        return p

    def pass_proposal(self, changes: dict[str, float], description: str) -> Proposal:
        """Propose, vote it through, queue and execute."""
        p = self.ready(self.dao.propose(self.alice, changes, description))
        self.dao.execute(p, self.alice)
        return p


def make_dev(w3: Web3, config: DaoConfig | None = None) -> Dev:
    a = list(w3.eth.accounts)
    addresses = deploy_dao(
        w3,
        a[0],
        guardian=a[1],
        operator=a[2],
        holders={a[3]: 400_000 * TOKEN, a[4]: 300_000 * TOKEN, a[5]: TOKEN},
        config=config or DaoConfig(),
    )
    dao = Dao(w3, addresses)
    for holder in a[3:6]:
        dao.delegate(holder)
    DevChain(w3).mine(1)
    return Dev(w3, dao, DevChain(w3), addresses, a[0], a[1], a[2], a[3], a[4], a[5], a[6])


@pytest.fixture
def dev() -> Dev:
    return make_dev(connect())


@pytest.fixture(params=["embedded", "anvil"])
def any_chain(request: pytest.FixtureRequest) -> Web3:
    """The embedded chain, then anvil: contract behaviour must not depend on the EVM."""
    if request.param == "embedded":
        return connect()
    w3: Web3 = request.getfixturevalue("anvil")
    return w3


ANVIL = Path(__file__).resolve().parents[2] / "contracts" / "node_modules" / ".bin" / "anvil"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def anvil() -> Iterator[Web3]:
    binary = str(ANVIL) if ANVIL.exists() else shutil.which("anvil")
    assert binary, "anvil is installed by `make` (npm package @foundry-rs/anvil)"
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--host", "127.0.0.1", "--port", str(port), "--silent", "--hardfork", "cancun"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                w3 = connect(f"http://127.0.0.1:{port}", timeout_s=2)
                break
            except Exception:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        yield w3
    finally:
        proc.terminate()
        proc.wait(timeout=10)
