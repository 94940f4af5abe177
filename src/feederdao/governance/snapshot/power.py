"""Voting power recomputed from the chain at a proposal's snapshot block.

Supported strategies (Snapshot's names): ``erc20-balance-of`` (token balance) and
``erc20-votes`` (ERC20Votes delegated votes), with ``params.address`` the token and
``params.decimals`` its decimals. Power is the sum over the proposal's strategies, in token units.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from web3 import Web3

from feederdao.governance.chain import calling
from feederdao.governance.errors import GovernanceError

_ABI = [
    {
        "name": "balanceOf",
        "type": "function",
        "stateMutability": "view",
        "inputs": [{"name": "a", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
    {
        "name": "getVotes",
        "type": "function",
        "stateMutability": "view",
        "inputs": [{"name": "a", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
]
SUPPORTED = ("erc20-balance-of", "erc20-votes")


@dataclass(frozen=True)
class PowerMismatch:
    voter: str
    hub_power: float
    chain_power: float


def voting_power(
    w3: Web3, strategies: Iterable[Mapping[str, Any]], voters: Iterable[str], block: int
) -> dict[str, float]:
    """Each voter's power at ``block`` under ``strategies``."""
    voters = list(voters)
    out = dict.fromkeys((v.lower() for v in voters), 0.0)
    for strategy in strategies:
        name = strategy.get("name")
        params = strategy.get("params", {})
        if name not in SUPPORTED:
            raise GovernanceError(f"voting strategy {name!r} is not supported; use {SUPPORTED}")
        try:
            address = Web3.to_checksum_address(params["address"])
            scale = 10 ** int(params.get("decimals", 18))
        except (KeyError, TypeError, ValueError) as exc:
            raise GovernanceError(f"voting strategy {name}: bad params {params!r} ({exc})") from exc
        token = w3.eth.contract(address=address, abi=_ABI)
        fn = "balanceOf" if name == "erc20-balance-of" else "getVotes"
        for voter in voters:
            who = Web3.to_checksum_address(voter)
            with calling(f"reading the voting power of {who} at block {block} ({name})"):
                raw = getattr(token.functions, fn)(who).call(block_identifier=block)
            out[voter.lower()] += raw / scale
    return out


def mismatches(
    hub: Mapping[str, float], chain: Mapping[str, float], tolerance: float = 1e-9
) -> list[PowerMismatch]:
    """Voters whose hub-reported power differs from the chain's."""
    out = []
    for voter, hub_vp in hub.items():
        chain_vp = chain.get(voter.lower(), 0.0)
        if abs(hub_vp - chain_vp) > tolerance * max(1.0, abs(chain_vp)):
            out.append(PowerMismatch(voter, hub_vp, chain_vp))
    return out
