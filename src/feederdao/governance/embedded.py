"""The embedded chain (web3's in-process EthereumTesterProvider) as one deployment's own.

Every embedded chain starts from the same genesis accounts, so contracts deployed from them get
the same addresses in every deployment, and an EIP-712 signature made for one deployment's
market (its domain names the SettlementRegistry's address) would be valid in all of them. A
deployment therefore deploys from an account of its own, whose key is derived from the
deployment's secret seed: its contract addresses, and so its signing domain, are its own, and
stay the same across restarts of the same deployment.
"""

from __future__ import annotations

from eth_account import Account
from eth_utils.crypto import keccak
from web3 import Web3
from web3.types import Wei

from feederdao.governance.chain import is_embedded
from feederdao.governance.errors import GovernanceError

FUNDING_WEI = 10**21  # 1000 ether, for the deployment's gas


def deployment_account(w3: Web3, seed: bytes, funder: str) -> str:
    """The deployer of the deployment ``seed`` on the embedded chain: added to the chain's
    keyring and funded by ``funder``; its address."""
    if not is_embedded(w3):
        raise GovernanceError("a deployment account is only made on the embedded chain")
    key = keccak(b"feederdao embedded deployment:" + seed)
    address = str(Account.from_key(key).address)
    tester = w3.provider.ethereum_tester  # type: ignore[attr-defined]
    if address not in w3.eth.accounts:
        tester.add_account("0x" + key.hex())
    tx = w3.eth.send_transaction({"from": funder, "to": address, "value": Wei(FUNDING_WEI)})
    w3.eth.wait_for_transaction_receipt(tx)
    return address
