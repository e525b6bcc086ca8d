"""den's Hydra sweeper over optuna (>= 4): single- and multi-objective searches whose study
lives in a journal file beside the trials; see den_optuna_sweeper.py.

``hydra_plugins`` itself is a namespace package (no ``__init__.py``), shared with the other
Hydra plugins installed; Hydra imports every public module under it and registers the plugin
classes it finds.
"""
