"""The ``feederdao`` command line (Typer); a thin edge over ``feederdao.workflows``."""
