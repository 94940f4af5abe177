"""Use cases that tie the domain subpackages together; the CLI and API call only these."""
