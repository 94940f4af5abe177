// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

/// @title GridParameters: the market's grid parameters, changed only by the DAO's Timelock.
/// @notice Values are integers in millionths of their unit (0.95 pu is 950000, 12.5 EUR/MWh is
/// 12500000). Every key's hard bounds, largest step and interval are fixed at deployment.
///
/// Step accounting: no value moves more than its `maxStep` within any `minInterval` seconds,
/// however the changes are batched (several calls in one proposal, several proposals in one
/// block). An interval opens at deployment and with the first change after a quiet period of at
/// least `minInterval`; it lasts while changes keep coming less than `minInterval` apart. Every
/// value held during an interval (the one it opened with included) lies in a band no wider than
/// `maxStep`; a change that would widen the band beyond it reverts with `StepTooLarge`, naming
/// when the interval ends if nothing changes before.
///
/// The guardian (the DSO) may pause and unpause the registry and cancel operations queued on the
/// Timelock (this registry holds the Timelock's canceller role and cancels on the guardian's
/// behalf), except an operation that only replaces or removes the guardian. It never sets a
/// value, a bound or the guardian. The DAO replaces or removes the guardian through the Timelock.
contract GridParameters is Pausable {
    struct Parameter {
        int256 value;
        int256 minValue;
        int256 maxValue;
        uint256 maxStep;
        uint64 minInterval;
        uint64 lastChanged; // the latest change, or the deployment
        int256 bandLow; // lowest value held since the current interval opened
        int256 bandHigh; // highest value held since the current interval opened
        bool exists;
    }

    address public immutable timelock;
    address public guardian;
    bytes32[] private _keys;
    mapping(bytes32 => Parameter) private _params;

    event ParameterChanged(bytes32 indexed key, int256 oldValue, int256 newValue);
    event GuardianChanged(address indexed previousGuardian, address indexed newGuardian);

    error NotTimelock(address caller);
    error NotGuardian(address caller);
    error UnknownParameter(bytes32 key);
    error OutOfBounds(bytes32 key, int256 value, int256 minValue, int256 maxValue);
    error StepTooLarge(bytes32 key, uint256 movement, uint256 maxStep, uint256 intervalEnds);
    error BadDefinition(bytes32 key);
    error ZeroInterval(bytes32 key);
    error GuardianChangeNotCancellable();

    constructor(
        address timelock_,
        address guardian_,
        bytes32[] memory keys_,
        int256[] memory values_,
        int256[] memory mins_,
        int256[] memory maxs_,
        uint256[] memory maxSteps_,
        uint64[] memory minIntervals_
    ) {
        uint256 n = keys_.length;
        require(
            values_.length == n && mins_.length == n && maxs_.length == n && maxSteps_.length == n
                && minIntervals_.length == n,
            "GridParameters: length mismatch"
        );
        timelock = timelock_;
        guardian = guardian_;
        emit GuardianChanged(address(0), guardian_);
        for (uint256 i = 0; i < n; i++) {
            bytes32 key = keys_[i];
            if (_params[key].exists || mins_[i] > maxs_[i] || values_[i] < mins_[i] || values_[i] > maxs_[i]) {
                revert BadDefinition(key);
            }
            if (minIntervals_[i] == 0) revert ZeroInterval(key);
            _params[key] = Parameter(
                values_[i],
                mins_[i],
                maxs_[i],
                maxSteps_[i],
                minIntervals_[i],
                uint64(block.timestamp),
                values_[i],
                values_[i],
                true
            );
            _keys.push(key);
        }
    }

    modifier onlyTimelock() {
        if (msg.sender != timelock) revert NotTimelock(msg.sender);
        _;
    }

    modifier onlyGuardian() {
        if (msg.sender != guardian) revert NotGuardian(msg.sender);
        _;
    }

    /// @notice Set one value; only the Timelock, only while not paused, within the bounds and
    /// within the step of the current interval.
    function setValue(bytes32 key, int256 newValue) external onlyTimelock whenNotPaused {
        Parameter storage p = _params[key];
        if (!p.exists) revert UnknownParameter(key);
        if (newValue < p.minValue || newValue > p.maxValue) {
            revert OutOfBounds(key, newValue, p.minValue, p.maxValue);
        }
        int256 low = p.bandLow;
        int256 high = p.bandHigh;
        if (block.timestamp >= uint256(p.lastChanged) + p.minInterval) {
            low = p.value; // quiet for a whole interval: a new interval opens at the current value
            high = p.value;
        }
        if (newValue < low) low = newValue;
        if (newValue > high) high = newValue;
        uint256 movement = uint256(high - low);
        if (movement > p.maxStep) {
            revert StepTooLarge(key, movement, p.maxStep, uint256(p.lastChanged) + p.minInterval);
        }
        int256 old = p.value;
        p.value = newValue;
        p.bandLow = low;
        p.bandHigh = high;
        p.lastChanged = uint64(block.timestamp);
        emit ParameterChanged(key, old, newValue);
    }

    /// @notice Replace the guardian, or remove it with the zero address; only the Timelock.
    /// Removing the guardian of a paused registry unpauses it, since nobody could any more.
    function setGuardian(address newGuardian) external onlyTimelock {
        emit GuardianChanged(guardian, newGuardian);
        guardian = newGuardian;
        if (newGuardian == address(0) && paused()) _unpause();
    }

    function pause() external onlyGuardian {
        _pause();
    }

    function unpause() external onlyGuardian {
        _unpause();
    }

    /// @notice The guardian cancels an operation waiting in the Timelock, named by its calls (as
    /// the Governor queued them). An operation whose every call replaces or removes the guardian
    /// cannot be cancelled: the guardian has no veto over its own replacement.
    function cancelQueued(
        address[] calldata targets,
        uint256[] calldata values_,
        bytes[] calldata payloads,
        bytes32 predecessor,
        bytes32 salt
    ) external onlyGuardian {
        bool onlyGuardianChanges = targets.length > 0;
        for (uint256 i = 0; i < targets.length && onlyGuardianChanges; i++) {
            onlyGuardianChanges = targets[i] == address(this) && payloads[i].length >= 4
                && bytes4(payloads[i][:4]) == this.setGuardian.selector;
        }
        if (onlyGuardianChanges) revert GuardianChangeNotCancellable();
        TimelockController t = TimelockController(payable(timelock));
        t.cancel(t.hashOperationBatch(targets, values_, payloads, predecessor, salt));
    }

    function value(bytes32 key) external view returns (int256) {
        Parameter storage p = _params[key];
        if (!p.exists) revert UnknownParameter(key);
        return p.value;
    }

    function parameter(bytes32 key) external view returns (Parameter memory) {
        Parameter memory p = _params[key];
        if (!p.exists) revert UnknownParameter(key);
        return p;
    }

    function keys() external view returns (bytes32[] memory) {
        return _keys;
    }

    /// @notice All values in key order, read in one call (at one block).
    function values() external view returns (bytes32[] memory keys_, int256[] memory values_) {
        keys_ = _keys;
        values_ = new int256[](keys_.length);
        for (uint256 i = 0; i < keys_.length; i++) {
            values_[i] = _params[keys_[i]].value;
        }
    }
}
