"""``python -m den.pareto SWEEP_DIR``: a search's accuracy-capacity front (see :mod:`den.reports.pareto`)."""

from den.reports.pareto import main

if __name__ == "__main__":
    raise SystemExit(main())
