"""Connecting to a chain, sending transactions, and translating web3's errors.

The embedded default is web3's in-process ``EthereumTesterProvider``; any JSON-RPC URL works
the same. Development chains (the embedded one, anvil) can also be moved in time and mined.
"""

from __future__ import annotations

import ast
from typing import Any

from eth_tester.exceptions import TransactionFailed
from eth_utils.abi import function_abi_to_4byte_selector
from web3 import EthereumTesterProvider, Web3
from web3.exceptions import ContractCustomError, ContractLogicError, TimeExhausted, Web3Exception

from feederdao.governance.errors import ChainUnavailableError, GovernanceError


def connect(rpc_url: str | None = None, timeout_s: float = 10.0) -> Web3:
    """The embedded chain (``rpc_url`` None) or a JSON-RPC node; raise if it is unreachable."""
    if rpc_url is None:
        return Web3(EthereumTesterProvider())
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout_s}))
    try:
        w3.eth.chain_id  # noqa: B018 - a round trip proves the node answers
    except Exception as exc:
        raise ChainUnavailableError(f"no Ethereum node answers at {rpc_url}: {exc}") from exc
    return w3


def use_private_key(w3: Web3, private_key: str) -> str:
    """Sign this connection's transactions locally with ``private_key``; return its address."""
    from eth_account import Account
    from web3.middleware import SignAndSendRawMiddlewareBuilder

    account = Account.from_key(private_key)
    w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(account), layer=0)
    w3.eth.default_account = account.address
    return str(account.address)


def is_embedded(w3: Web3) -> bool:
    return isinstance(w3.provider, EthereumTesterProvider)


class DevChain:
    """Mining and time travel on a development chain (embedded or anvil)."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3

    def mine(self, blocks: int = 1) -> None:
        if is_embedded(self.w3):
            self.w3.provider.ethereum_tester.mine_blocks(blocks)  # type: ignore[attr-defined]
        else:
            self.w3.provider.make_request("anvil_mine", [hex(blocks)])  # type: ignore[arg-type]

    def advance_time(self, seconds: int) -> None:
        """Move the clock forward and mine a block carrying the new time."""
        if is_embedded(self.w3):
            now = self.w3.eth.get_block("latest")["timestamp"]
            self.w3.provider.ethereum_tester.time_travel(now + seconds)  # type: ignore[attr-defined]
        else:
            self.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
            self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def _custom_error_message(contract: Any, data: str) -> str | None:
    """Decode a custom error (``error OutOfBounds(...)``) from the contract's ABI."""
    raw = bytes.fromhex(data[2:] if data.startswith("0x") else data)
    for item in contract.abi:
        if item.get("type") != "error":
            continue
        if function_abi_to_4byte_selector(item) == raw[:4]:
            from eth_abi.abi import decode

            types = [i["type"] for i in item["inputs"]]
            values = decode(types, raw[4:])
            args = ", ".join(
                f"{i['name']}={_readable(v)}" for i, v in zip(item["inputs"], values, strict=True)
            )
            return f"{item['name']}({args})"
    return None


def _readable(value: Any) -> str:
    if isinstance(value, bytes) and len(value) == 32 and value.rstrip(b"\0").isascii():
        text = value.rstrip(b"\0").decode("ascii")
        if text.isprintable() and text:
            return text
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


def _revert_data(exc: Exception) -> bytes | None:
    """Raw revert data of a failed call, from web3 or from the embedded chain's eth-tester."""
    for arg in exc.args:
        if isinstance(arg, bytes | bytearray):
            return bytes(arg)
        if isinstance(arg, str):
            text = arg.split("execution reverted: ", 1)[-1]
            if text.startswith(("b'", 'b"')):
                try:
                    value = ast.literal_eval(text)
                except (ValueError, SyntaxError):
                    return None
                return bytes(value) if isinstance(value, bytes) else None
            if text.startswith("0x"):
                try:
                    return bytes.fromhex(text[2:])
                except ValueError:
                    return None
    return None


def explain(exc: Exception, contracts: list[Any]) -> str:
    """A readable reason for a failed call: a decoded custom error where possible."""
    data = _revert_data(exc) if not isinstance(exc, ContractCustomError) else None
    if data is not None and len(data) >= 4:
        for c in contracts:
            msg = _custom_error_message(c, "0x" + data.hex())
            if msg:
                return msg
        if data[:4] == bytes.fromhex("08c379a0"):  # Error(string)
            from eth_abi.abi import decode

            return str(decode(["string"], data[4:])[0])
    if isinstance(exc, ContractCustomError):
        hex_data = exc.data if isinstance(exc.data, str) else str(exc.args[0])
        for c in contracts:
            msg = _custom_error_message(c, hex_data)
            if msg:
                return msg
        return f"custom error {hex_data}"
    if isinstance(exc, ContractLogicError):
        return str(exc.message or exc)
    return str(exc)


def transact(w3: Web3, call: Any, sender: str, what: str, contracts: list[Any]) -> Any:
    """Send ``call`` from ``sender`` and wait for its receipt; raise
    :class:`GovernanceError` naming ``what`` failed and why (decoded revert reason)."""
    try:
        if hasattr(call, "call"):
            call.call({"from": sender})  # surface the revert reason before spending gas
        tx = call.transact({"from": sender})
        receipt = w3.eth.wait_for_transaction_receipt(tx, timeout=30)
    except (ContractLogicError, ContractCustomError, TransactionFailed) as exc:
        raise GovernanceError(f"{what} reverted: {explain(exc, contracts)}") from exc
    except TimeExhausted as exc:
        raise GovernanceError(f"{what}: no receipt within 30 s") from exc
    except Web3Exception as exc:
        raise GovernanceError(f"{what} failed: {exc}") from exc
    if receipt["status"] != 1:
        raise GovernanceError(f"{what} reverted in transaction {receipt['transactionHash'].hex()}")
    return receipt
