// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

/// @title GridParameters: the market's grid parameters, changed only by the DAO's Timelock.
/// @notice Values are integers in millionths of their unit (0.95 pu is 950000, 12.5 EUR/MWh is
/// 12500000). Every key's hard bounds, largest step per change and shortest interval between
/// changes are fixed at deployment. The guardian (the DSO) may pause the registry, never set a
/// value; it cancels queued operations on the Timelock, where it holds the canceller role.
contract GridParameters is Pausable {
    struct Parameter {
        int256 value;
        int256 minValue;
        int256 maxValue;
        uint256 maxStep;
        uint64 minInterval;
        uint64 lastChanged;
        bool exists;
    }

    address public immutable timelock;
    address public immutable guardian;
    bytes32[] private _keys;
    mapping(bytes32 => Parameter) private _params;

    event ParameterChanged(bytes32 indexed key, int256 oldValue, int256 newValue);

    error NotTimelock(address caller);
    error NotGuardian(address caller);
    error UnknownParameter(bytes32 key);
    error OutOfBounds(bytes32 key, int256 value, int256 minValue, int256 maxValue);
    error StepTooLarge(bytes32 key, uint256 step, uint256 maxStep);
    error TooSoon(bytes32 key, uint256 nextAllowed);
    error BadDefinition(bytes32 key);

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
        for (uint256 i = 0; i < n; i++) {
            bytes32 key = keys_[i];
            if (_params[key].exists || mins_[i] > maxs_[i] || values_[i] < mins_[i] || values_[i] > maxs_[i]) {
                revert BadDefinition(key);
            }
            _params[key] = Parameter(values_[i], mins_[i], maxs_[i], maxSteps_[i], minIntervals_[i], 0, true);
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

    /// @notice Set one value; only the Timelock, only while not paused, within bounds, step and interval.
    function setValue(bytes32 key, int256 newValue) external onlyTimelock whenNotPaused {
        Parameter storage p = _params[key];
        if (!p.exists) revert UnknownParameter(key);
        if (newValue < p.minValue || newValue > p.maxValue) {
            revert OutOfBounds(key, newValue, p.minValue, p.maxValue);
        }
        uint256 step = newValue >= p.value ? uint256(newValue - p.value) : uint256(p.value - newValue);
        if (step > p.maxStep) revert StepTooLarge(key, step, p.maxStep);
        if (p.lastChanged != 0 && block.timestamp < uint256(p.lastChanged) + p.minInterval) {
            revert TooSoon(key, uint256(p.lastChanged) + p.minInterval);
        }
        int256 old = p.value;
        p.value = newValue;
        p.lastChanged = uint64(block.timestamp);
        emit ParameterChanged(key, old, newValue);
    }

    function pause() external onlyGuardian {
        _pause();
    }

    function unpause() external onlyGuardian {
        _unpause();
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
