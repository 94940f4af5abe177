// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

interface IGridParameters {
    function value(bytes32 key) external view returns (int256);
}

/// @title SettlementVault: collateral in, metered settlement out.
/// @notice Participants deposit a settlement token (any ERC-20) as collateral. After each
/// interval's metering window the operator posts one Merkle root of every account's cumulative
/// net position (token units, positive = the market owes the account) over all intervals so
/// far: one transaction per interval, whatever the number of accounts. A root becomes final
/// once its challenge window has passed (read, when it is posted, from the DAO's GridParameters
/// under `settlement_challenge_window_s`) and someone calls `finalize`; until then the guardian
/// or the DAO's Timelock may reject it. An account withdraws up to
/// deposit + cumulative net − already withdrawn, proving its position against the latest final
/// root. A withdrawal is given notice first: `requestWithdrawal(amount)` makes `amount`
/// executable by `withdraw` once `noticeBase + challengeWindow()` seconds have passed (the
/// challenge window as it stands when the request is made), so collateral that covered a bid
/// at gate closure stays in the vault until that interval's root can be final. Off chain, a
/// requested amount counts as withdrawn from the moment it is requested. A rejected root is
/// never final (nor posted for its interval again); the operator posts a corrected root for
/// the same interval, with a challenge window of its own. Leaves are OpenZeppelin StandardMerkleTree leaves of (address, int256):
/// keccak256(bytes.concat(keccak256(abi.encode(account, cumulativeNet)))).
contract SettlementVault is ReentrancyGuard {
    using SafeERC20 for IERC20;

    bytes32 public constant WINDOW_KEY = "settlement_challenge_window_s";

    struct Posted {
        bytes32 root;
        uint64 postedAt;
        uint64 finalAfter;
        bool rejected;
    }

    struct Notice {
        uint256 amount; // requested and not yet withdrawn
        uint64 dueAt; // Unix seconds from which `amount` may be withdrawn
    }

    IERC20 public immutable token;
    address public immutable operator;
    address public immutable guardian;
    address public immutable timelock;
    IGridParameters public immutable parameters;
    /// @notice Seconds of notice a withdrawal needs on top of the challenge window: enough to
    /// cover an interval from its gate closure to the end of its metering window, and the
    /// operator's time to settle and post its root.
    uint64 public immutable noticeBase;

    mapping(uint256 => Posted) public posted;
    uint256 public lastPostedInterval; // the latest posted interval, 0: none
    uint256 public finalInterval; // the interval of the latest final root, 0: none
    bytes32 public finalRoot;
    mapping(address => uint256) public deposited;
    mapping(address => uint256) public withdrawn;
    mapping(address => Notice) public notices;
    /// @notice Roots rejected for an interval: never posted for it again, so never final.
    mapping(uint256 => mapping(bytes32 => bool)) public wasRejected;

    event Deposited(address indexed account, uint256 amount);
    event RootPosted(uint256 indexed intervalId, bytes32 root, uint64 finalAfter);
    event RootRejected(uint256 indexed intervalId, bytes32 root, address by);
    event RootFinalized(uint256 indexed intervalId, bytes32 root);
    event WithdrawalRequested(address indexed account, uint256 amount, uint256 pending, uint64 dueAt);
    event WithdrawalCancelled(address indexed account, uint256 amount);
    event Withdrawn(address indexed account, uint256 amount, uint256 intervalId);

    error NotOperator(address caller);
    error NotChallenger(address caller);
    error IntervalNotAfter(uint256 intervalId, uint256 lastPosted);
    error EmptyRoot(uint256 intervalId);
    error NotPosted(uint256 intervalId);
    error AlreadyRejected(uint256 intervalId);
    error ChallengeWindowOpen(uint256 intervalId, uint64 finalAfter);
    error ChallengeWindowClosed(uint256 intervalId);
    error AlreadyFinal(uint256 intervalId, uint256 finalInterval);
    error NoFinalRoot();
    error InvalidProof(address account);
    error ExceedsAvailable(address account, uint256 amount, int256 available);
    error ZeroAmount();
    error BadWindow(int256 raw);
    error NoticeNotDue(address account, uint64 dueAt);
    error ExceedsRequested(address account, uint256 amount, uint256 requested);
    error NothingRequested(address account);
    error RootWasRejected(uint256 intervalId, bytes32 root);

    constructor(address token_, address operator_, address guardian_, address timelock_, address parameters_, uint64 noticeBase_) {
        token = IERC20(token_);
        operator = operator_;
        guardian = guardian_;
        timelock = timelock_;
        parameters = IGridParameters(parameters_);
        noticeBase = noticeBase_;
    }

    function deposit(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        deposited[msg.sender] += amount;
        token.safeTransferFrom(msg.sender, address(this), amount);
        emit Deposited(msg.sender, amount);
    }

    function challengeWindow() public view returns (uint64) {
        int256 raw = parameters.value(WINDOW_KEY);
        if (raw < 0 || raw % 1e6 != 0) revert BadWindow(raw);
        return uint64(uint256(raw / 1e6));
    }

    function postRoot(uint256 intervalId, bytes32 root) external {
        if (msg.sender != operator) revert NotOperator(msg.sender);
        if (root == bytes32(0)) revert EmptyRoot(intervalId);
        if (wasRejected[intervalId][root]) revert RootWasRejected(intervalId, root);
        // a later interval, or a corrected root for an interval whose root was rejected
        if (intervalId <= finalInterval || (intervalId <= lastPostedInterval && !posted[intervalId].rejected)) {
            revert IntervalNotAfter(intervalId, lastPostedInterval);
        }
        uint64 finalAfter = uint64(block.timestamp) + challengeWindow();
        posted[intervalId] = Posted(root, uint64(block.timestamp), finalAfter, false);
        lastPostedInterval = intervalId;
        emit RootPosted(intervalId, root, finalAfter);
    }

    /// @notice The guardian or the DAO rejects a root within its challenge window; the operator
    /// may then post a corrected root for the same interval.
    function reject(uint256 intervalId) external {
        if (msg.sender != guardian && msg.sender != timelock) revert NotChallenger(msg.sender);
        Posted storage p = posted[intervalId];
        if (p.root == bytes32(0)) revert NotPosted(intervalId);
        if (p.rejected) revert AlreadyRejected(intervalId);
        if (block.timestamp >= p.finalAfter) revert ChallengeWindowClosed(intervalId);
        p.rejected = true;
        wasRejected[intervalId][p.root] = true;
        emit RootRejected(intervalId, p.root, msg.sender);
    }

    /// @notice Anyone may finalize a root whose challenge window has passed unchallenged.
    function finalize(uint256 intervalId) external {
        Posted storage p = posted[intervalId];
        if (p.root == bytes32(0)) revert NotPosted(intervalId);
        if (p.rejected) revert AlreadyRejected(intervalId);
        if (block.timestamp < p.finalAfter) revert ChallengeWindowOpen(intervalId, p.finalAfter);
        if (intervalId <= finalInterval) revert AlreadyFinal(intervalId, finalInterval);
        finalInterval = intervalId;
        finalRoot = p.root;
        emit RootFinalized(intervalId, p.root);
    }

    function leaf(address account, int256 cumulativeNet) public pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(account, cumulativeNet))));
    }

    /// @notice What `account` may withdraw now, given its cumulative net position in the latest
    /// final root (reverts on a proof that does not hold).
    function available(address account, int256 cumulativeNet, bytes32[] calldata proof)
        public
        view
        returns (int256)
    {
        if (finalInterval == 0) revert NoFinalRoot();
        if (!MerkleProof.verifyCalldata(proof, finalRoot, leaf(account, cumulativeNet))) {
            revert InvalidProof(account);
        }
        return int256(deposited[account]) + cumulativeNet - int256(withdrawn[account]);
    }

    /// @notice Give notice of a withdrawal of `amount` more; the whole pending amount becomes
    /// executable `noticeBase + challengeWindow()` seconds from now (a later request restarts
    /// the notice of everything pending).
    function requestWithdrawal(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        Notice storage n = notices[msg.sender];
        n.amount += amount;
        n.dueAt = uint64(block.timestamp) + noticeBase + challengeWindow();
        emit WithdrawalRequested(msg.sender, amount, n.amount, n.dueAt);
    }

    /// @notice Withdraw a pending request (the collateral covers bids again).
    function cancelWithdrawal() external {
        Notice storage n = notices[msg.sender];
        uint256 amount = n.amount;
        if (amount == 0) revert NothingRequested(msg.sender);
        n.amount = 0;
        n.dueAt = 0;
        emit WithdrawalCancelled(msg.sender, amount);
    }

    /// @notice Withdraw up to the requested amount once its notice has passed, within what the
    /// latest final root leaves available.
    function withdraw(uint256 amount, int256 cumulativeNet, bytes32[] calldata proof) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        Notice storage n = notices[msg.sender];
        if (amount > n.amount) revert ExceedsRequested(msg.sender, amount, n.amount);
        if (block.timestamp < n.dueAt) revert NoticeNotDue(msg.sender, n.dueAt);
        int256 avail = available(msg.sender, cumulativeNet, proof);
        if (int256(amount) > avail) revert ExceedsAvailable(msg.sender, amount, avail);
        n.amount -= amount;
        withdrawn[msg.sender] += amount;
        token.safeTransfer(msg.sender, amount);
        emit Withdrawn(msg.sender, amount, finalInterval);
    }
}
