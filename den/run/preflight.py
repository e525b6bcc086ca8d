"""Checks that run before Hydra writes anything into the run directory (a Hydra callback).

``conf/config.yaml`` registers :class:`Preflight` under ``hydra.callbacks``. Its
``on_run_start`` runs before Hydra creates the run directory, opens ``train.log`` and saves
``.hydra/``: it validates the config (the one validation of a single run) and claims the run
directory, so an impossible config, a directory that belongs to another run, or one this user
cannot write stop the run with den's one-paragraph error (exit 2) and leave the directory
untouched. Hydra's callback runner turns an exception into a warning, so the refusal is an
exit, which nothing (not ``HYDRA_FULL_ERROR``) turns into a warning.

In a multirun, Hydra gives each job a fresh directory of its own and calls no per-job hook
before writing into it; each job validates its config first thing (:func:`validated`).
"""

from __future__ import annotations

import copy
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict, read_write

from den.config.schema import RunConfig
from den.config.validate import validate_config
from den.errors import DenError
from den.run import rundir
from den.run.resume import resume_dir

# run directory (resolved) -> the config the callback validated for it, in this process
_validated: dict[Path, RunConfig] = {}


def report(err: DenError) -> None:
    """Print ``err`` as den's one-paragraph error and exit with its status
    (``HYDRA_FULL_ERROR=1`` adds the traceback)."""
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        traceback.print_exc()
    print(f"\nError: {err}\n", file=sys.stderr)
    sys.exit(err.exit_code)


def validated(task_cfg: DictConfig, output_dir: str | Path) -> RunConfig:
    """The typed config of the run in ``output_dir``: the one the callback validated in this
    process (a single run), else validated now (a multirun job, a direct call)."""
    run = _validated.pop(Path(output_dir).resolve(), None)
    return run if run is not None else validate_config(task_cfg)


class Preflight(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            self._check(config)
        except DenError as err:
            report(err)

    @staticmethod
    def _check(config: DictConfig) -> None:
        from hydra.core.hydra_config import HydraConfig

        own = Path(str(config.hydra.run.dir)).absolute()
        with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
            config.hydra.runtime.output_dir = str(own)  # what Hydra's run_job sets next
        HydraConfig.instance().set_config(config)
        task_cfg = copy.deepcopy(config)
        with read_write(task_cfg), open_dict(task_cfg):
            del task_cfg["hydra"]
        run = validate_config(task_cfg)
        resume_from = resume_dir(run, own=own)
        rundir.claim(resume_from or own, resuming=resume_from is not None)
        _validated[own.resolve()] = run
