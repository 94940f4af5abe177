"""Plots and tables of clearing results (matplotlib, headless); reads only domain values."""
