"""Connecting to a chain, sending transactions, and translating web3's errors.

The embedded default is web3's in-process ``EthereumTesterProvider``; any JSON-RPC URL works
the same. Development chains (the embedded one, anvil) can also be moved in time and mined.
"""

from __future__ import annotations

import ast
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from eth_tester.exceptions import TransactionFailed
from eth_utils.abi import function_abi_to_4byte_selector
from web3 import EthereumTesterProvider, Web3
from web3.exceptions import ContractCustomError, ContractLogicError, TimeExhausted, Web3Exception

from feederdao.governance.errors import ChainUnavailableError, GovernanceError


def connect(rpc_url: str | None = None, timeout_s: float = 10.0, wait_s: float = 0.0) -> Web3:
    """The embedded chain (``rpc_url`` None) or a JSON-RPC node; raise if it is unreachable
    (after trying for ``wait_s`` seconds, for a node that is still starting)."""
    if rpc_url is None:
        return Web3(EthereumTesterProvider())
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout_s}))
    deadline = time.monotonic() + wait_s
    while True:
        try:
            w3.eth.chain_id  # noqa: B018 - a round trip proves the node answers
            return w3
        except Exception as exc:
            if time.monotonic() >= deadline:
                msg = f"no Ethereum node answers at {rpc_url}: {exc}"
                raise ChainUnavailableError(msg) from exc
            time.sleep(0.2)


def use_private_key(w3: Web3, private_key: str) -> str:
    """Sign this connection's transactions locally with ``private_key``; return its address."""
    from eth_account import Account
    from web3.middleware import SignAndSendRawMiddlewareBuilder

    try:
        account = Account.from_key(private_key)
    except (ValueError, TypeError) as exc:
        raise GovernanceError(f"the private key is not a 32-byte hex key: {exc}") from None
    w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(account), layer=0)
    w3.eth.default_account = account.address
    return str(account.address)


def is_embedded(w3: Web3) -> bool:
    return isinstance(w3.provider, EthereumTesterProvider)


class DevChain:
    """Mining and time travel on a development chain (embedded or anvil); a node that is not a
    development chain refuses with :class:`GovernanceError`."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3

    def _rpc(self, method: str, params: list[Any]) -> None:
        with calling(f"asking the node to {method}"):
            answer = self.w3.provider.make_request(method, params)  # type: ignore[arg-type]
        if answer.get("error"):
            raise GovernanceError(
                f"the node refuses {method} ({answer['error'].get('message', answer['error'])}): "
                "it is not a development chain; wait for its blocks instead"
            )

    def mine(self, blocks: int = 1) -> None:
        if is_embedded(self.w3):
            self.w3.provider.ethereum_tester.mine_blocks(blocks)  # type: ignore[attr-defined]
        else:
            self._rpc("anvil_mine", [hex(blocks)])

    def advance_time(self, seconds: int) -> None:
        """Move the clock forward and mine a block carrying the new time."""
        if is_embedded(self.w3):
            now = self.w3.eth.get_block("latest")["timestamp"]
            self.w3.provider.ethereum_tester.time_travel(now + seconds)  # type: ignore[attr-defined]
        else:
            self._rpc("evm_increaseTime", [seconds])
            self._rpc("evm_mine", [])


@dataclass(frozen=True)
class NodeInfo:
    chain_id: int
    block_number: int
    block_timestamp: int
    client: str
    development: bool  # mines and moves its clock on request (anvil, the embedded chain)


def node_info(w3: Web3) -> NodeInfo:
    """Who answers, where its chain is, and whether it mines on request."""
    with calling("reading the node"):
        head = w3.eth.get_block("latest")
        client = "embedded (eth-tester)" if is_embedded(w3) else str(w3.client_version)
    development = is_embedded(w3) or client.lower().startswith(("anvil", "hardhat", "ganache"))
    return NodeInfo(
        int(w3.eth.chain_id), int(head["number"]), int(head["timestamp"]), client, development
    )


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


@contextmanager
def calling(what: str, contracts: Sequence[Any] = ()) -> Iterator[None]:
    """Translate what web3, its HTTP transport and the embedded chain raise inside the block
    into :class:`GovernanceError` (:class:`ChainUnavailableError` when the node is gone), naming
    ``what`` was being done and, for a revert, the decoded reason."""
    try:
        yield
    except GovernanceError:
        raise
    except (ContractLogicError, ContractCustomError, TransactionFailed) as exc:
        raise GovernanceError(f"{what} reverted: {explain(exc, list(contracts))}") from exc
    except TimeExhausted as exc:
        raise GovernanceError(f"{what}: no receipt within 30 s") from exc
    except OSError as exc:  # requests' ConnectionError and Timeout are OSErrors
        raise ChainUnavailableError(f"{what}: the node does not answer ({exc})") from exc
    except Web3Exception as exc:
        raise GovernanceError(f"{what} failed: {exc}") from exc


def transact(w3: Web3, call: Any, sender: str, what: str, contracts: list[Any]) -> Any:
    """Send ``call`` from ``sender`` and wait for its receipt; raise
    :class:`GovernanceError` naming ``what`` failed and why (decoded revert reason)."""
    with calling(what, contracts):
        params: dict[str, Any] = {"from": sender}
        if hasattr(call, "call"):
            # surface the revert reason before spending gas, and estimate the gas, where the
            # transaction lands: in the next block (a vote sent at the snapshot block counts)
            call.call(params, block_identifier="pending")
            if is_embedded(w3):  # eth-tester estimates on its pending block already
                gas = call.estimate_gas(params)
            else:
                gas = call.estimate_gas(params, block_identifier="pending")
            params["gas"] = gas + gas // 5
        tx = call.transact(params)
        receipt = w3.eth.wait_for_transaction_receipt(tx, timeout=30)
    if receipt["status"] != 1:
        raise GovernanceError(f"{what} reverted in transaction {receipt['transactionHash'].hex()}")
    return receipt
