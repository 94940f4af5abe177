"""A participant signs in to the console with a wallet: the page asks the wallet
(``window.ethereum``, an EIP-1193 provider injected by the test) for its account and for a
``personal_sign`` of the service's sign-in message; the provider signs in Python with the
participant's key, as a wallet extension would with its own. The session then bids."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from feederdao.store import repositories as repo
from tests.api.conftest import NOON, Env, make_env, served
from tests.api.test_console import ARTIFACTS, CHROMIUM, Watch
from tests.scada_bridge.conftest import free_port

#: a minimal EIP-1193 provider: accounts from the test, personal_sign through a binding to it
PROVIDER = """
window.walletCalls = [];
window.ethereum = {
  isTestWallet: true,
  async request({ method, params }) {
    window.walletCalls.push(method);
    if (method === "eth_requestAccounts" || method === "eth_accounts") {
      return [await window.testWalletAddress()];
    }
    if (method === "personal_sign") return await window.testWalletSign(params[0], params[1]);
    throw Object.assign(new Error(`unsupported method ${method}`), { code: 4200 });
  },
};
"""


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def env(tmp_path: Path, port: int) -> Iterator[Env]:
    # the service's sign-in domain is the host:port the browser reaches it at
    e = make_env(f"sqlite:///{tmp_path / 'market.db'}", str(tmp_path), with_chain=False, port=port)
    yield e
    e.service.db.dispose()


def wallet(context: Any, account: LocalAccount, signed: list[str]) -> None:
    """``window.ethereum`` in every page of ``context``, signing with ``account``."""

    def sign(data: str, address: str) -> str:
        text = bytes.fromhex(data.removeprefix("0x")).decode()
        signed.append(text)
        assert address.lower() == account.address.lower()
        sig = Account.sign_message(encode_defunct(text=text), account.key).signature
        return "0x" + bytes(sig).hex()

    context.expose_function("testWalletAddress", lambda: account.address.lower())
    context.expose_function("testWalletSign", sign)
    context.add_init_script(PROVIDER)


def test_participant_signs_in_with_a_wallet_and_bids(env: Env, port: int) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    iid = env.open_interval(NOON)
    account: LocalAccount = Account.create()
    bus, device = env.free_device()
    with env.service.db.session() as s:
        part = repo.register_participant(s, "Erin's heat pump", account.address, bus, [device])
        repo.approve_participant(s, part.id, bus, [device])
        pid = part.id
    watch = Watch()
    with served(env, port=port) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            size = {"width": 1280, "height": 800}
            context = browser.new_context(viewport=size)  # type: ignore[arg-type]
            signed: list[str] = []
            wallet(context, account, signed)
            page = context.new_page()
            watch.attach(page, "participant")
            page.goto(f"{url}/#participant")
            page.wait_for_selector("body[data-ready='true']")
            page.get_by_role("button", name="Sign in with a wallet").click()
            expect(page.locator("#p-me")).to_contain_text(
                f"Erin's heat pump ({account.address.lower()})"
            )
            expect(page.locator("#whoami")).to_contain_text(f"participant {pid} (wallet, until")
            assert page.evaluate("window.walletCalls") == ["eth_requestAccounts", "personal_sign"]
            (text,) = signed
            assert text.startswith(f"127.0.0.1:{port} wants you to sign in with your Ethereum")
            assert f"\n{account.address}\n" in text and f"URI: {url}/\n" in text
            # the session key bids like any participant key
            page.select_option("#p-device", device)
            page.click("#p-bid button[type=submit]")
            expect(page.locator("#p-bids tbody tr[data-status='active']")).to_have_count(1)
            with env.service.db.read() as s:
                (b,) = repo.list_bids(s)
                assert b.participant_id == pid and b.interval_id == iid
            page.screenshot(path=str(ARTIFACTS / "participant-wallet.png"), full_page=True)

            # a wallet holding another key: the page shows the service's refusal
            other = browser.new_context(viewport=size)  # type: ignore[arg-type]
            thief: LocalAccount = Account.create()
            wallet(other, thief, [])
            page2 = other.new_page()
            watch.attach(page2, "other wallet")
            page2.goto(f"{url}/#participant")
            page2.wait_for_selector("body[data-ready='true']")
            watch.expected.append(("POST", "/session/wallet", 403))
            page2.get_by_role("button", name="Sign in with a wallet").click()
            expect(page2.locator("#p-wallet-error")).to_have_text(
                f"Sign-in refused: {thief.address} is not an approved participant's address"
            )
            expect(page2.locator("#signin")).to_be_visible()

            # no wallet at all: said so, nothing sent
            bare = browser.new_context(viewport=size).new_page()  # type: ignore[arg-type]
            watch.attach(bare, "no wallet")
            bare.goto(f"{url}/#participant")
            bare.wait_for_selector("body[data-ready='true']")
            bare.get_by_role("button", name="Sign in with a wallet").click()
            expect(bare.locator("#p-wallet-error")).to_contain_text("No wallet in this browser")
            assert watch.problems == []
            assert watch.expected == []
        finally:
            browser.close()
