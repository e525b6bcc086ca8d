"""den: Dynamically Expandable Networks (Yoon et al., ICLR 2018) and a continual-learning framework."""

from den.utils.threads import apply_wait_policy

__version__ = "0.1.0"

# First thing, before any den module imports torch: libgomp (PyTorch's OpenMP) reads its wait
# policy once, when torch loads it. Idle OpenMP threads then spin only briefly before they
# sleep, so a busy process beside a run costs it little (den/utils/threads.py; a value the user
# set in OMP_WAIT_POLICY or GOMP_SPINCOUNT is kept). What is in effect is in results.json.
OPENMP_WAIT = apply_wait_policy()
