"""The market's chain: the governance contracts, the safe parameter reader, the registry."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

from web3 import Web3

from feederdao.errors import FieldError
from feederdao.governance.certificates import Certificates, deploy_certificates
from feederdao.governance.chain import connect, use_private_key
from feederdao.governance.dao import Dao
from feederdao.governance.deploy import DaoAddresses, DaoConfig, deploy_contract, deploy_dao
from feederdao.governance.embedded import deployment_account
from feederdao.governance.envelope import SafetyEnvelope
from feederdao.governance.reader import ParameterReader, ReaderState
from feederdao.governance.registry import SettlementRegistry
from feederdao.governance.signing import MarketDomain, domain_separator
from feederdao.governance.vault import Vault, VaultAddresses, deploy_vault
from feederdao.store import repositories as repo
from feederdao.store.db import Database
from feederdao.workflows.market.settings import ServiceSettings

DEPLOYMENT_SEED = "deployment-seed"
#: ``certificates`` on the in-process chain: a contract deployed at start
EMBEDDED = "embedded"


class StoreReaderState:
    """The parameter reader's cursor and last-known-good set, kept in the database."""

    NAME = "parameter-reader"

    def __init__(self, db: Database) -> None:
        self.db = db

    def load(self) -> ReaderState:
        with self.db.read() as s:
            text = repo.load_document(s, self.NAME)
        return ReaderState.from_json(text) if text else ReaderState()

    def save(self, state: ReaderState) -> None:
        with self.db.session() as s:
            repo.save_document(s, self.NAME, state.to_json())


@dataclass
class ChainContext:
    """The governance contracts, the safe reader, the registry that anchors results and, when
    one is configured, the settlement vault that holds the participants' collateral."""

    w3: Web3
    dao: Dao
    reader: ParameterReader
    registry: SettlementRegistry
    vault: Vault | None = None
    #: the certificates of origin the operator loop mints (step ``certify``)
    certificates: Certificates | None = None

    @property
    def operator(self) -> str:
        """The account that anchors results."""
        return self.registry.operator

    @operator.setter
    def operator(self, account: str) -> None:
        self.registry.operator = account

    @cached_property
    def domain(self) -> MarketDomain:
        return MarketDomain(self.registry.chain_id, self.dao.addresses.settlement)

    @cached_property
    def separator(self) -> bytes:
        return domain_separator(self.domain)


def deployment_seed(db: Database) -> bytes:
    """This deployment's secret seed, made on its first start and kept in its database."""
    with db.session() as s:
        text = repo.load_document(s, DEPLOYMENT_SEED)
        if text is None:
            text = secrets.token_hex(32)
            repo.save_document(s, DEPLOYMENT_SEED, text)
    return bytes.fromhex(text)


def connect_chain(settings: ServiceSettings, db: Database) -> ChainContext:
    """The chain the settings name, or an in-process chain with a freshly deployed DAO (from
    this deployment's own account, so that its contract addresses and signing domain are its
    own: :mod:`feederdao.governance.embedded`).

    The settlement vault: with ``rpc_url``, the one ``vault_file`` names (as ``feederdao vault
    deploy`` writes it); on the in-process chain, with ``embedded_vault``, a test euro token
    (minted by the chain's first account) and a vault deployed at start.

    The certificates contract (``certificates``): with ``rpc_url``, the one the file
    ``feederdao certificates deploy`` wrote names; on the in-process chain, ``"embedded"``
    deploys one at start, issued by the operator."""
    envelope = SafetyEnvelope.from_toml(Path(settings.envelope)) if settings.envelope else None
    vault: Vault | None = None
    if settings.rpc_url is None and settings.vault_file:
        raise FieldError(
            "vault_file",
            "the in-process chain starts afresh on every run: set embedded_vault = true "
            "for a vault of its own, or rpc_url for the chain the vault file describes",
        )
    if settings.rpc_url is not None and settings.embedded_vault:
        raise FieldError("embedded_vault", "embedded_vault is for the in-process chain only")
    embedded_certificates = embedded_certificates_of(settings)
    certificates: Certificates | None = None
    if settings.rpc_url is None:
        w3 = connect()
        a = list(w3.eth.accounts)
        deployer = deployment_account(w3, deployment_seed(db), funder=a[0])
        addresses = deploy_dao(
            w3, deployer, guardian=a[1], operator=a[2], holders={a[3]: 10**24}, config=DaoConfig()
        )
        operator: str = a[2]
        envelope = replace(envelope or SafetyEnvelope(), confirmations=0)
        if settings.embedded_vault:
            token = deploy_contract(w3, "TestStableToken", deployer, a[0]).address
            vault = Vault(w3, deploy_vault(w3, deployer, addresses, token=token))
        if embedded_certificates:
            certificates = Certificates(w3, deploy_certificates(w3, deployer, operator))
    else:
        if not settings.dao_file or not settings.operator_key:
            raise FieldError(
                "settings", "with rpc_url set, dao_file and operator_key must be set too"
            )
        w3 = connect(settings.rpc_url)
        addresses = DaoAddresses.read(Path(settings.dao_file))
        operator = use_private_key(w3, settings.operator_key)
        if settings.vault_file:
            vault = Vault(w3, VaultAddresses.read(Path(settings.vault_file)))
        if settings.certificates:
            certificates = Certificates(w3, certificates_address(Path(settings.certificates)))
    reader = ParameterReader(w3, addresses.parameters, envelope, StoreReaderState(db))
    dao = Dao(w3, addresses)
    return ChainContext(w3, dao, reader, SettlementRegistry(dao, operator), vault, certificates)


def embedded_certificates_of(settings: ServiceSettings) -> bool:
    """Whether ``certificates`` asks for a contract deployed on the in-process chain (or
    FieldError: it does not fit the chain the settings name)."""
    embedded = settings.certificates == EMBEDDED
    if settings.certificates is not None and embedded != (settings.rpc_url is None):
        raise FieldError(
            "certificates",
            f'certificates = "{EMBEDDED}" is for the in-process chain; with rpc_url it names '
            "the file `feederdao certificates deploy` wrote",
        )
    return embedded


def certificates_address(path: Path) -> str:
    """The contract address in a certificates deployment file (``{"certificates": "0x…"}``)."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise FieldError("certificates", f"cannot read {str(path)!r}: {exc}") from exc
    address = doc.get("certificates") if isinstance(doc, dict) else None
    if not isinstance(address, str) or not Web3.is_address(address):
        raise FieldError("certificates", f"{str(path)!r} names no certificates contract address")
    return Web3.to_checksum_address(address)
