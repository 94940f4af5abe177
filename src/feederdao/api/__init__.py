"""The market API (FastAPI): participants, bids, intervals, results, governance, metrics."""
