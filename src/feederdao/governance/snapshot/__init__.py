"""Snapshot: verified off-chain votes (EIP-712), voting power from chain, Snapshot's tallies."""
