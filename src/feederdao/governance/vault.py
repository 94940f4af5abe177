"""The settlement vault and its token, over web3: deposits, roots, challenges, withdrawals.

Amounts are the token's smallest units (integers). Every call goes through
:func:`feederdao.governance.chain.transact`, so a revert comes back as a
:class:`GovernanceError` naming the contract's own error (``ExceedsAvailable(...)``,
``ChallengeWindowOpen(...)``).

A withdrawal is given notice: :meth:`Vault.request_withdrawal` first, then
:meth:`Vault.withdraw` once :attr:`VaultBalance.due_at` has passed (the notice is the
vault's ``noticeBase`` plus the challenge window in force when the request is made).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from web3 import Web3

from feederdao.governance.chain import calling, transact
from feederdao.governance.deploy import DaoAddresses, contract, deploy_contract
from feederdao.governance.errors import GovernanceError


@dataclass(frozen=True)
class VaultAddresses:
    token: str
    vault: str

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def read(cls, path: Path) -> VaultAddresses:
        try:
            found = cls(**json.loads(Path(path).read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise GovernanceError(f"{str(path)!r} is not a vault deployment file: {exc}") from exc
        for name, value in asdict(found).items():
            if not Web3.is_address(value):
                raise GovernanceError(f"{str(path)!r}: {name} {value!r} is not an address")
        return found


@dataclass(frozen=True)
class PostedRoot:
    """What the vault holds for one interval (an empty root: nothing posted)."""

    root: bytes
    posted_at: int
    final_after: int  # Unix seconds of the chain's clock
    rejected: bool


#: Seconds of notice a withdrawal needs on top of the challenge window: an interval of up to a
#: day (96 quarter-hour periods), its gate-closure lead and its metering window, and a day for
#: the operator to settle it and post its root. Collateral that covered a bid at gate closure
#: therefore stays in the vault until that interval's root can be final.
WITHDRAWAL_NOTICE_S = 2 * 86_400


@dataclass(frozen=True)
class VaultBalance:
    deposited: int
    withdrawn: int
    wallet: int  # the account's token balance outside the vault
    requested: int = 0  # given notice of and not yet withdrawn (counts as withdrawn off chain)
    due_at: int = 0  # Unix seconds from which ``requested`` may be withdrawn (0: none)


def deploy_vault(
    w3: Web3,
    deployer: str,
    dao: DaoAddresses,
    token: str | None = None,
    notice_s: int = WITHDRAWAL_NOTICE_S,
) -> VaultAddresses:
    """Deploy a vault for the DAO's operator, guardian and Timelock, reading its challenge
    window from the DAO's GridParameters, with ``notice_s`` of withdrawal notice on top of it;
    with no ``token``, a test stable token too (owned by ``deployer``, who may mint it)."""
    if not 0 <= notice_s < 2**63:
        raise GovernanceError(f"withdrawal notice {notice_s} s: give 0 or more seconds")
    if token is None:
        token = deploy_contract(w3, "TestStableToken", deployer, deployer).address
    vault = deploy_contract(
        w3,
        "SettlementVault",
        deployer,
        Web3.to_checksum_address(token),
        dao.operator,
        dao.guardian,
        dao.timelock,
        dao.parameters,
        notice_s,
    )
    return VaultAddresses(Web3.to_checksum_address(token), vault.address)


class Vault:
    def __init__(self, w3: Web3, addresses: VaultAddresses) -> None:
        self.w3 = w3
        self.addresses = addresses
        self.token = contract(w3, "TestStableToken", addresses.token)
        self.vault = contract(w3, "SettlementVault", addresses.vault)
        self._all = [self.vault, self.token]

    def _send(self, call: Any, sender: str, what: str) -> Any:
        return transact(self.w3, call, Web3.to_checksum_address(sender), what, self._all)

    def mint(self, owner: str, to: str, amount: int) -> None:
        """Mint test tokens (the test stable token's owner only)."""
        self._send(
            self.token.functions.mint(Web3.to_checksum_address(to), amount),
            owner,
            f"minting {amount} units to {to}",
        )

    def deposit(self, account: str, amount: int) -> Any:
        """Approve the vault and deposit ``amount`` as collateral (two transactions)."""
        self._send(
            self.token.functions.approve(self.vault.address, amount),
            account,
            f"approving the vault to take {amount} units",
        )
        return self._send(
            self.vault.functions.deposit(amount), account, f"depositing {amount} units"
        )

    def post_root(self, operator: str, interval: int, root: bytes) -> Any:
        return self._send(
            self.vault.functions.postRoot(interval, root),
            operator,
            f"posting the settlement root of interval {interval}",
        )

    def reject(self, challenger: str, interval: int) -> Any:
        return self._send(
            self.vault.functions.reject(interval),
            challenger,
            f"rejecting the settlement root of interval {interval}",
        )

    def finalize(self, sender: str, interval: int) -> Any:
        return self._send(
            self.vault.functions.finalize(interval),
            sender,
            f"finalising the settlement root of interval {interval}",
        )

    def request_withdrawal(self, account: str, amount: int) -> Any:
        """Give notice of a withdrawal of ``amount`` more (see :meth:`balance` for when the
        pending amount is due)."""
        return self._send(
            self.vault.functions.requestWithdrawal(amount),
            account,
            f"requesting a withdrawal of {amount} units",
        )

    def cancel_withdrawal(self, account: str) -> Any:
        return self._send(
            self.vault.functions.cancelWithdrawal(), account, "cancelling the withdrawal request"
        )

    def withdraw(self, account: str, amount: int, position: int, proof: list[bytes]) -> Any:
        """Withdraw ``amount`` of what was requested, once its notice has passed."""
        return self._send(
            self.vault.functions.withdraw(amount, position, proof),
            account,
            f"withdrawing {amount} units",
        )

    def available(self, account: str, position: int, proof: list[bytes]) -> int:
        with calling("reading what the account may withdraw", self._all):
            return int(
                self.vault.functions.available(
                    Web3.to_checksum_address(account), position, proof
                ).call()
            )

    def balance(self, account: str) -> VaultBalance:
        a = Web3.to_checksum_address(account)
        with calling(f"reading the vault balance of {account}", self._all):
            requested, due_at = self.vault.functions.notices(a).call()
            return VaultBalance(
                int(self.vault.functions.deposited(a).call()),
                int(self.vault.functions.withdrawn(a).call()),
                int(self.token.functions.balanceOf(a).call()),
                int(requested),
                int(due_at) if int(requested) else 0,
            )

    def notice_base_s(self) -> int:
        """The vault's withdrawal notice on top of the challenge window (seconds)."""
        with calling("reading the withdrawal notice", self._all):
            return int(self.vault.functions.noticeBase().call())

    def final(self) -> tuple[int, bytes]:
        """The latest final interval and its root (0 and empty bytes: none yet)."""
        with calling("reading the vault's final root", self._all):
            return (
                int(self.vault.functions.finalInterval().call()),
                bytes(self.vault.functions.finalRoot().call()),
            )

    def posted(self, interval: int) -> PostedRoot:
        with calling(f"reading the root posted for interval {interval}", self._all):
            root, posted_at, final_after, rejected = self.vault.functions.posted(interval).call()
        return PostedRoot(bytes(root), int(posted_at), int(final_after), bool(rejected))

    def challenge_window_s(self) -> int:
        with calling("reading the challenge window", self._all):
            return int(self.vault.functions.challengeWindow().call())
