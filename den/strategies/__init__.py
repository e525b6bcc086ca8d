"""Continual-learning strategies: DEN and its baselines, one module each."""
