"""Smart meters as oracles: signed readings, their validation, the deviation settlement."""
