"""Torch-free reading of finished runs: tables, figures, the HTML page, the Pareto front,
the search objectives."""
