// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title TestStableToken: a euro stable token for development chains (6 decimals, 1 unit =
/// 1 micro-EUR). The vault takes any ERC-20; this one lets a test chain mint participants'
/// collateral. Never deploy it on a chain where value is real.
contract TestStableToken is ERC20, Ownable {
    constructor(address owner_) ERC20("Test Euro", "tEUR") Ownable(owner_) {}

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }
}
