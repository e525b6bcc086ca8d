"""Checks that run before Hydra writes anything into the run directory (a Hydra callback).

``conf/config.yaml`` registers :class:`Preflight` under ``hydra.callbacks``. Its
``on_run_start`` runs before Hydra creates the run directory, sets up ``train.log`` and saves
``.hydra/``: an impossible config, a run directory that belongs to another run, or one this
user cannot write then stop with den's one-paragraph error (exit 2), and leave the directory
untouched (no empty run folder, no ``.hydra/overrides.yaml`` of a refused run beside another
run's results). :func:`den.train.run` repeats the same checks, for multiruns and for callers
that do not go through Hydra; the run-directory lock taken here is kept for the process.
"""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict, read_write

from den.errors import ConfigError, DenError


def report(err: DenError) -> None:
    """Print ``err`` as den's one-paragraph error and exit with its status."""
    print(f"\nError: {err}\n", file=sys.stderr)
    sys.exit(err.exit_code)


class Preflight(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            self._check(config)
            return
        try:
            self._check(config)
        except DenError as err:
            report(err)

    @staticmethod
    def _check(config: DictConfig) -> None:
        from hydra.core.hydra_config import HydraConfig

        from den import rundir
        from den.train import resume_dir
        from den.validation import validate_config

        HydraConfig.instance().set_config(config)
        for group, choice in (config.hydra.runtime.choices or {}).items():
            if isinstance(choice, str) and choice.endswith("_schema"):
                raise ConfigError(
                    group,
                    choice,
                    "is a schema (the types of the group's settings), not a config to run",
                    f"use {group}={choice.removesuffix('_schema')}",
                )
        task_cfg = copy.deepcopy(config)
        with read_write(task_cfg), open_dict(task_cfg):
            del task_cfg["hydra"]
        validate_config(task_cfg)
        own = Path(str(config.hydra.run.dir)).absolute()
        resume_from = resume_dir(task_cfg, own=own)
        rundir.claim(resume_from or own, resuming=resume_from is not None)
