"""``python -m den.choose RUNS...``: the validation-only choice of a setting within capacity
budgets (see :mod:`den.reports.choose`)."""

from den.reports.choose import main

if __name__ == "__main__":
    raise SystemExit(main())
