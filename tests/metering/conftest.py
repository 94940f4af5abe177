"""The chain fixtures of the governance tests serve the metered settlement too."""

from tests.governance.conftest import anvil, any_chain

__all__ = ["anvil", "any_chain"]
