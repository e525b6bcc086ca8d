"""One run's life: the task loop, the run directory (lock, atomic files, checkpoint,
resume), the run record, provenance."""
