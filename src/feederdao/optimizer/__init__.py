"""Pyomo formulation of the network-constrained market clearing, solved by HiGHS."""
