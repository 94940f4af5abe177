"""The settlement vault on the embedded chain and on anvil: collateral, roots, challenges,
withdrawals against OpenZeppelin's MerkleProof, and the attacks it must refuse."""

from __future__ import annotations

import pytest
from web3 import Web3

from feederdao.governance.chain import DevChain
from feederdao.governance.errors import GovernanceError
from feederdao.governance.merkle import PositionTree
from feederdao.governance.vault import Vault, deploy_vault
from tests.governance.conftest import Dev, make_dev

UNIT = 10**6  # the test euro has 6 decimals


@pytest.fixture
def chain(any_chain: Web3) -> tuple[Dev, Vault]:
    d = make_dev(any_chain)
    v = Vault(d.w3, deploy_vault(d.w3, d.deployer, d.addresses))
    for who in (d.alice, d.bob, d.operator):
        v.mint(d.deployer, who, 1_000 * UNIT)
    return d, v


def _final(d: Dev, v: Vault, interval: int, tree: PositionTree) -> None:
    v.post_root(d.operator, interval, tree.root)
    d.chain.advance_time(v.challenge_window_s() + 1)
    v.finalize(d.carol, interval)  # anyone may finalise


def _notice(d: Dev, v: Vault, who: str, amount: int) -> None:
    """``who`` gives notice of withdrawing ``amount``, and the notice passes."""
    v.request_withdrawal(who, amount)
    d.chain.advance_time(v.notice_base_s() + v.challenge_window_s() + 1)


def test_withdraw_exactly_deposit_plus_position(chain: tuple[Dev, Vault]) -> None:
    d, v = chain
    v.deposit(d.alice, 100 * UNIT)
    v.deposit(d.bob, 100 * UNIT)
    v.deposit(d.operator, 50 * UNIT)
    positions = {d.alice: 12_345_678, d.bob: -2_345_678, d.operator: -10_000_000}
    tree = PositionTree.build(positions)
    _final(d, v, 1, tree)
    assert v.final() == (1, tree.root)
    for who, pos in positions.items():
        proof = tree.proof(who)
        assert tree.verify(who, pos, proof)
        owed = v.available(who, pos, proof)
        _notice(d, v, who, owed)
        before = v.balance(who).wallet
        v.withdraw(who, owed, pos, proof)
        assert v.balance(who).wallet - before == owed
    assert v.balance(d.alice).withdrawn == 100 * UNIT + 12_345_678
    assert v.balance(d.bob).withdrawn == 100 * UNIT - 2_345_678
    # everything deposited went back out: the positions sum to zero
    assert v.token.functions.balanceOf(v.vault.address).call() == 0


def test_double_withdrawal_is_refused(chain: tuple[Dev, Vault]) -> None:
    d, v = chain
    v.deposit(d.alice, 10 * UNIT)
    v.deposit(d.bob, 10 * UNIT)
    tree = PositionTree.build({d.alice: 5 * UNIT, d.bob: -5 * UNIT})
    _final(d, v, 1, tree)
    proof = tree.proof(d.alice)
    _notice(d, v, d.alice, 15 * UNIT)
    v.withdraw(d.alice, 15 * UNIT, 5 * UNIT, proof)
    with pytest.raises(GovernanceError, match="ExceedsRequested"):
        v.withdraw(d.alice, 15 * UNIT, 5 * UNIT, proof)
    # a new request does not open what the final root no longer holds
    _notice(d, v, d.alice, 1)
    with pytest.raises(GovernanceError, match="ExceedsAvailable"):
        v.withdraw(d.alice, 1, 5 * UNIT, proof)


def test_over_withdrawal_beyond_collateral_is_refused(chain: tuple[Dev, Vault]) -> None:
    d, v = chain
    v.deposit(d.bob, 10 * UNIT)
    tree = PositionTree.build({d.bob: -4 * UNIT, d.alice: 4 * UNIT})
    _final(d, v, 1, tree)
    proof = tree.proof(d.bob)
    _notice(d, v, d.bob, 10 * UNIT)
    with pytest.raises(GovernanceError, match="ExceedsAvailable"):
        v.withdraw(d.bob, 6 * UNIT + 1, -4 * UNIT, proof)
    # a better position than the root holds does not verify
    with pytest.raises(GovernanceError, match="InvalidProof"):
        v.withdraw(d.bob, 6 * UNIT + 1, 0, proof)
    # alice's proof does not serve bob
    with pytest.raises(GovernanceError, match="InvalidProof"):
        v.withdraw(d.bob, 1, 4 * UNIT, tree.proof(d.alice))
    v.withdraw(d.bob, 6 * UNIT, -4 * UNIT, proof)


def test_root_by_anyone_but_the_operator_is_refused(chain: tuple[Dev, Vault]) -> None:
    d, v = chain
    tree = PositionTree.build({d.alice: 1, d.bob: -1})
    for who in (d.alice, d.guardian, d.deployer):
        with pytest.raises(GovernanceError, match="NotOperator"):
            v.post_root(who, 1, tree.root)


def test_withdrawal_against_a_root_not_yet_final_is_refused(chain: tuple[Dev, Vault]) -> None:
    d, v = chain
    v.deposit(d.alice, 10 * UNIT)
    v.deposit(d.bob, 10 * UNIT)
    _notice(d, v, d.alice, 15 * UNIT)  # the notice has passed: only the root holds it back
    tree = PositionTree.build({d.alice: 5 * UNIT, d.bob: -5 * UNIT})
    v.post_root(d.operator, 1, tree.root)
    with pytest.raises(GovernanceError, match="NoFinalRoot"):
        v.withdraw(d.alice, 1, 5 * UNIT, tree.proof(d.alice))
    with pytest.raises(GovernanceError, match="ChallengeWindowOpen"):
        v.finalize(d.alice, 1)
    d.chain.advance_time(v.challenge_window_s() + 1)
    v.finalize(d.alice, 1)
    # the next interval's root, posted but not final, is not what withdrawals prove against
    later = PositionTree.build({d.alice: 9 * UNIT, d.bob: -9 * UNIT})
    v.post_root(d.operator, 2, later.root)
    with pytest.raises(GovernanceError, match="InvalidProof"):
        v.withdraw(d.alice, 1, 9 * UNIT, later.proof(d.alice))
    v.withdraw(d.alice, 15 * UNIT, 5 * UNIT, tree.proof(d.alice))


def test_rejected_root_never_becomes_final(chain: tuple[Dev, Vault]) -> None:
    d, v = chain
    v.deposit(d.alice, 10 * UNIT)
    v.deposit(d.bob, 10 * UNIT)
    bad = PositionTree.build({d.alice: 500 * UNIT, d.bob: -500 * UNIT})
    v.post_root(d.operator, 1, bad.root)
    with pytest.raises(GovernanceError, match="NotChallenger"):
        v.reject(d.alice, 1)
    v.reject(d.guardian, 1)
    assert v.posted(1).rejected
    with pytest.raises(GovernanceError, match="AlreadyRejected"):
        v.reject(d.guardian, 1)
    _notice(d, v, d.alice, 505 * UNIT)  # the rejected root's window is long past
    with pytest.raises(GovernanceError, match="AlreadyRejected"):
        v.finalize(d.alice, 1)
    with pytest.raises(GovernanceError, match="NoFinalRoot"):
        v.withdraw(d.alice, 1, 500 * UNIT, bad.proof(d.alice))
    # a root never posted before cannot be slipped in below the latest posted interval
    v.post_root(d.operator, 2, bad.root)
    with pytest.raises(GovernanceError, match="IntervalNotAfter"):
        v.post_root(d.operator, 2, bad.root)  # not rejected: not replaced
    # the rejected root itself is never posted for the interval again (so never final)
    with pytest.raises(GovernanceError, match="RootWasRejected"):
        v.post_root(d.operator, 1, bad.root)
    # the operator posts a corrected root for the rejected interval: a fresh challenge window
    good = PositionTree.build({d.alice: 5 * UNIT, d.bob: -5 * UNIT})
    v.post_root(d.operator, 1, good.root)
    fresh = v.posted(1)
    assert fresh.root == good.root and not fresh.rejected
    now = int(d.w3.eth.get_block("latest")["timestamp"])
    assert fresh.final_after >= now + v.challenge_window_s()
    with pytest.raises(GovernanceError, match="ChallengeWindowOpen"):
        v.finalize(d.alice, 1)
    d.chain.advance_time(v.challenge_window_s() + 1)
    v.finalize(d.carol, 1)
    assert v.final() == (1, good.root)
    with pytest.raises(GovernanceError, match="InvalidProof"):
        v.withdraw(d.alice, 1, 500 * UNIT, bad.proof(d.alice))
    v.withdraw(d.alice, 15 * UNIT, 5 * UNIT, good.proof(d.alice))
    assert v.balance(d.alice).withdrawn == 15 * UNIT
    # and once final, nobody rejects it any more
    with pytest.raises(GovernanceError, match="ChallengeWindowClosed"):
        v.reject(d.guardian, 1)


def test_the_challenge_window_is_the_daos(chain: tuple[Dev, Vault]) -> None:
    d, v = chain
    assert v.challenge_window_s() == 3600
    d.pass_proposal({"settlement_challenge_window_s": 7200}, "Longer challenge window")
    assert v.challenge_window_s() == 7200
    tree = PositionTree.build({d.alice: 1, d.bob: -1})
    v.post_root(d.operator, 1, tree.root)
    d.chain.advance_time(3601)
    with pytest.raises(GovernanceError, match="ChallengeWindowOpen"):
        v.finalize(d.alice, 1)


def test_python_tree_matches_the_contracts_leaf(chain: tuple[Dev, Vault]) -> None:
    _, v = chain
    from feederdao.governance.merkle import leaf_hash

    for account, pos in (("0x" + "ab" * 20, -7), ("0x" + "01" * 20, 2**200)):
        assert bytes(v.vault.functions.leaf(Web3.to_checksum_address(account), pos).call()) == (
            leaf_hash(account, pos)
        )


def test_tree_of_one_and_of_many() -> None:
    one = PositionTree.build({"0x" + "aa" * 20: 3})
    assert one.proof("0x" + "aa" * 20) == [] and one.root == one.nodes[0]
    many = {"0x" + f"{i + 1:040x}": i * 7 - 30 for i in range(37)}
    tree = PositionTree.build(many)
    assert all(tree.verify(a, p, tree.proof(a)) for a, p in many.items())
    assert not tree.verify("0x" + f"{1:040x}", 1, tree.proof("0x" + f"{1:040x}"))
    assert max(len(tree.proof(a)) for a in many) <= 6  # ⌈log2 37⌉


def test_deposit_of_nothing_is_refused(chain: tuple[Dev, Vault]) -> None:
    d, v = chain
    with pytest.raises(GovernanceError, match="ZeroAmount"):
        v.deposit(d.alice, 0)
    DevChain(d.w3).mine(1)


def test_withdrawal_notice_attacks_are_refused(chain: tuple[Dev, Vault]) -> None:
    """No withdrawal without notice, none before the notice has passed, none of more than
    was requested, none twice; the notice covers the challenge window the DAO sets."""
    d, v = chain
    v.deposit(d.alice, 10 * UNIT)
    v.deposit(d.bob, 10 * UNIT)
    tree = PositionTree.build({d.alice: 5 * UNIT, d.bob: -5 * UNIT})
    _final(d, v, 1, tree)
    proof = tree.proof(d.alice)
    with pytest.raises(GovernanceError, match="ExceedsRequested"):
        v.withdraw(d.alice, 1, 5 * UNIT, proof)  # nothing requested
    with pytest.raises(GovernanceError, match="ZeroAmount"):
        v.request_withdrawal(d.alice, 0)
    v.request_withdrawal(d.alice, 6 * UNIT)
    b = v.balance(d.alice)
    now = int(d.w3.eth.get_block("latest")["timestamp"])
    assert b.requested == 6 * UNIT
    assert b.due_at == now + v.notice_base_s() + v.challenge_window_s()
    assert v.notice_base_s() == 2 * 86_400
    with pytest.raises(GovernanceError, match="NoticeNotDue"):
        v.withdraw(d.alice, 6 * UNIT, 5 * UNIT, proof)
    d.chain.advance_time(v.notice_base_s())  # one challenge window short
    with pytest.raises(GovernanceError, match="NoticeNotDue"):
        v.withdraw(d.alice, 1, 5 * UNIT, proof)
    d.chain.advance_time(v.challenge_window_s() + 2)
    with pytest.raises(GovernanceError, match="ExceedsRequested"):
        v.withdraw(d.alice, 6 * UNIT + 1, 5 * UNIT, proof)  # more than requested
    v.withdraw(d.alice, 4 * UNIT, 5 * UNIT, proof)  # part of it
    v.withdraw(d.alice, 2 * UNIT, 5 * UNIT, proof)  # the rest
    with pytest.raises(GovernanceError, match="ExceedsRequested"):
        v.withdraw(d.alice, 2 * UNIT, 5 * UNIT, proof)  # twice
    assert v.balance(d.alice).withdrawn == 6 * UNIT and v.balance(d.alice).requested == 0
    # a later request restarts the notice of all that is pending; a cancelled one is gone
    v.request_withdrawal(d.bob, 1 * UNIT)
    d.chain.advance_time(v.notice_base_s() + v.challenge_window_s() + 1)
    v.request_withdrawal(d.bob, 1 * UNIT)
    with pytest.raises(GovernanceError, match="NoticeNotDue"):
        v.withdraw(d.bob, 1 * UNIT, -5 * UNIT, tree.proof(d.bob))
    v.cancel_withdrawal(d.bob)
    assert v.balance(d.bob).requested == 0
    with pytest.raises(GovernanceError, match="NothingRequested"):
        v.cancel_withdrawal(d.bob)
