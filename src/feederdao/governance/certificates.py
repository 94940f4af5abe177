"""Energy attribute certificates (ERC-1155, 1 token = 1 Wh) over web3: issue, query, retire."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode
from eth_utils.crypto import keccak
from web3 import Web3

from feederdao.governance.chain import calling, transact
from feederdao.governance.deploy import contract, deploy_contract


def certificate_id(interval: int, period: int, source: str) -> int:
    """``uint256(keccak256(abi.encode(intervalId, period, source)))``, as the contract."""
    return int.from_bytes(
        keccak(encode(["uint64", "uint32", "string"], [interval, period, source]))
    )


@dataclass(frozen=True)
class Origin:
    interval: int
    period: int
    source: str
    producer: str
    wh: int


def deploy_certificates(w3: Web3, deployer: str, operator: str) -> str:
    return str(
        deploy_contract(
            w3, "EnergyCertificates", deployer, Web3.to_checksum_address(operator)
        ).address
    )


class Certificates:
    def __init__(self, w3: Web3, address: str) -> None:
        self.w3 = w3
        self.contract = contract(w3, "EnergyCertificates", address)

    def issue(
        self,
        operator: str,
        interval: int,
        period: int,
        source: str,
        producer: str,
        holders: list[tuple[str, int]],
    ) -> Any:
        call = self.contract.functions.issue(
            interval,
            period,
            source,
            Web3.to_checksum_address(producer),
            [Web3.to_checksum_address(a) for a, _ in holders],
            [wh for _, wh in holders],
        )
        what = f"issuing the certificates of {source} in period {period} of interval {interval}"
        return transact(self.w3, call, operator, what, [self.contract])

    def minted(self, interval: int, period: int, source: str) -> int:
        with calling("reading minted certificates", [self.contract]):
            return int(
                self.contract.functions.minted(certificate_id(interval, period, source)).call()
            )

    def balance(self, holder: str, interval: int, period: int, source: str) -> int:
        with calling("reading a certificate balance", [self.contract]):
            return int(
                self.contract.functions.balanceOf(
                    Web3.to_checksum_address(holder), certificate_id(interval, period, source)
                ).call()
            )

    def retire(self, holder: str, interval: int, period: int, source: str, wh: int) -> Any:
        call = self.contract.functions.retire(certificate_id(interval, period, source), wh)
        return transact(self.w3, call, holder, f"retiring {wh} Wh of {source}", [self.contract])

    def where_from(self, holder: str, interval: int, period: int) -> list[Origin]:
        """Where ``holder``'s energy in a period came from: every source issued in that period
        and the Wh of it the holder holds (retired ones included)."""
        with calling("reading the certificates' origins", [self.contract]):
            logs = self.contract.events.Issued().get_logs(from_block=0)
            out = []
            who = Web3.to_checksum_address(holder)
            for log in logs:
                a = log["args"]
                if a["intervalId"] != interval or a["period"] != period:
                    continue
                cid = int(a["id"])
                held = int(self.contract.functions.balanceOf(who, cid).call()) + int(
                    self.contract.functions.retired(who, cid).call()
                )
                if held:
                    out.append(Origin(interval, period, str(a["source"]), str(a["producer"]), held))
            return out
