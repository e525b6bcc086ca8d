"""``python -m den.compare RUNS...``: compare runs side by side (see :mod:`den.reports.compare`)."""

from den.reports.compare import main

if __name__ == "__main__":
    raise SystemExit(main())
