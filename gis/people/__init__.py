"""People and access: API keys and the principals they stand for."""
