"""On-chain governance: contracts (web3), the DAO lifecycle, the safety envelope, the reader."""
