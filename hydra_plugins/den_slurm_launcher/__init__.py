"""den's SLURM launcher for Hydra (``hydra/launcher=slurm``): see den_slurm_launcher.py."""
