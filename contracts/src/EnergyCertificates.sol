// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC1155} from "@openzeppelin/contracts/token/ERC1155/ERC1155.sol";

/// @title EnergyCertificates: proof of origin of metered local generation (ERC-1155).
/// @notice One token is one Wh. A token id names one source (a device of the feeder) in one
/// period of one interval: id = uint256(keccak256(abi.encode(intervalId, period, source))).
/// The operator mints, for each period, exactly the metered export of each PV or storage
/// source, allocated to the buyers that source supplied in that period (the rest stays with the
/// producer). A holder retires what it claims; retired certificates are burnt and counted.
contract EnergyCertificates is ERC1155 {
    struct Origin {
        uint64 intervalId;
        uint32 period;
        string source;
        address producer;
    }

    address public immutable operator;
    mapping(uint256 => Origin) private _origins;
    mapping(uint256 => uint256) public minted;
    mapping(address => mapping(uint256 => uint256)) public retired;

    event Issued(uint256 indexed id, uint64 intervalId, uint32 period, string source, address producer);
    event Retired(address indexed holder, uint256 indexed id, uint256 amountWh);

    error NotOperator(address caller);
    error LengthMismatch();
    error ProducerChanged(uint256 id, address producer);

    constructor(address operator_) ERC1155("") {
        operator = operator_;
    }

    function idOf(uint64 intervalId, uint32 period, string calldata source) public pure returns (uint256) {
        return uint256(keccak256(abi.encode(intervalId, period, source)));
    }

    /// @notice Issue the certificates of one source in one period: `amounts[i]` Wh to `holders[i]`.
    function issue(
        uint64 intervalId,
        uint32 period,
        string calldata source,
        address producer,
        address[] calldata holders,
        uint256[] calldata amounts
    ) external {
        if (msg.sender != operator) revert NotOperator(msg.sender);
        if (holders.length != amounts.length) revert LengthMismatch();
        uint256 id = idOf(intervalId, period, source);
        Origin storage o = _origins[id];
        if (o.producer == address(0)) {
            _origins[id] = Origin(intervalId, period, source, producer);
            emit Issued(id, intervalId, period, source, producer);
        } else if (o.producer != producer) {
            revert ProducerChanged(id, o.producer);
        }
        for (uint256 i = 0; i < holders.length; i++) {
            if (amounts[i] == 0) continue;
            minted[id] += amounts[i];
            _mint(holders[i], id, amounts[i], "");
        }
    }

    function origin(uint256 id) external view returns (Origin memory) {
        return _origins[id];
    }

    /// @notice Claim (retire) certificates: burnt, and counted as the holder's.
    function retire(uint256 id, uint256 amountWh) external {
        _burn(msg.sender, id, amountWh);
        retired[msg.sender][id] += amountWh;
        emit Retired(msg.sender, id, amountWh);
    }
}
