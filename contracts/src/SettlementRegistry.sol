// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title SettlementRegistry: the market operator anchors each interval's clearing result once.
contract SettlementRegistry {
    address public immutable operator;
    mapping(uint256 => bytes32) public resultHash;

    event Anchored(uint256 indexed intervalId, bytes32 resultHash);

    error NotOperator(address caller);
    error AlreadyAnchored(uint256 intervalId, bytes32 existing);
    error EmptyHash(uint256 intervalId);

    constructor(address operator_) {
        operator = operator_;
    }

    function anchor(uint256 intervalId, bytes32 hash) external {
        if (msg.sender != operator) revert NotOperator(msg.sender);
        if (hash == bytes32(0)) revert EmptyHash(intervalId);
        bytes32 existing = resultHash[intervalId];
        if (existing != bytes32(0)) revert AlreadyAnchored(intervalId, existing);
        resultHash[intervalId] = hash;
        emit Anchored(intervalId, hash);
    }
}
