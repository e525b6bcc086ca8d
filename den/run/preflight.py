"""Checks that run before Hydra writes anything into the run directory (a Hydra callback).

``conf/config.yaml`` registers :class:`Preflight` under ``hydra.callbacks``. Its
``on_run_start`` runs before Hydra creates the run directory, opens ``train.log`` and saves
``.hydra/``: it validates the config (the one validation of a single run) and claims the run
directory, so an impossible config, a directory that belongs to another run, one this user
cannot write, or one where a file to be written is a planted symbolic link stop the run with
den's one-paragraph error (exit 2) and leave the directory untouched. Hydra's callback runner
turns an exception into a warning, so the refusal is an exit, which nothing (not
``HYDRA_FULL_ERROR``) turns into a warning.

It then writes ``.hydra/`` itself (the same three files Hydra would, atomically and never
through a link, a full disk named) and creates the log file, so Hydra's own writes cannot
fail unnamed or follow a link. With ``resume=<dir>`` the run continues in ``<dir>``: its log
and ``.hydra/`` go there too, whatever ``hydra.run.dir`` says.

In a multirun, Hydra gives each job a fresh directory of its own and calls no per-job hook
before writing into it: ``on_multirun_start`` checks the sweep folder (``multirun.yaml``,
the job folders an earlier sweep left) for links before anything is written, and each job
validates its config and checks its folder first thing (:func:`validated`).
"""

from __future__ import annotations

import copy
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from den.config.schema import RunConfig
from den.config.validate import validate_config
from den.errors import DenError
from den.run import rundir
from den.run.resume import resume_dir
from den.utils.files import (
    UnsafePathError,
    WriteError,
    open_nofollow,
    refuse_unsafe,
    write_atomic,
)

# run directory (resolved) -> the config the callback validated for it, in this process
_validated: dict[Path, RunConfig] = {}
# files of a sweep folder that a sweeper writes; optuna's lock is a link by design
SWEEP_FILES = ("multirun.yaml", "optuna.journal")
SWEEP_LINKS_ALLOWED = ("optuna.journal.lock",)
SWEEP_FIX = "start the sweep in a fresh folder (hydra.sweep.dir=<new dir>)"


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


def log_file(config: DictConfig) -> Path | None:
    """The file Hydra's job logging writes (``<run dir>/train.log``), if it has one."""
    try:
        name = OmegaConf.select(config, "hydra.job_logging.handlers.file.filename")
    except Exception:  # an interpolation Hydra would also fail on: nothing to prepare
        return None
    return Path(str(name)) if name else None


class Preflight(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            self._check(config)
        except DenError as err:
            report(err)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            check_sweep_folder(Path(str(config.hydra.sweep.dir)).absolute())
        except DenError as err:
            report(err)

    @staticmethod
    def _check(config: DictConfig) -> None:
        from hydra.core.hydra_config import HydraConfig

        own = Path(os.path.abspath(str(config.hydra.run.dir)))
        set_output_dir(config, own)  # what Hydra's run_job sets next
        HydraConfig.instance().set_config(config)
        task_cfg = copy.deepcopy(config)
        with read_write(task_cfg), open_dict(task_cfg):
            del task_cfg["hydra"]
        run = validate_config(task_cfg)
        resume_from = resume_dir(run, own=own)
        folder = Path(os.path.abspath(resume_from)) if resume_from else own
        if folder != own:  # the resumed run's folder gets this part's log and .hydra/
            note_redirect(config, folder, own)
            with read_write(config.hydra), open_dict(config.hydra):
                config.hydra.run.dir = str(folder)
            set_output_dir(config, folder)
            HydraConfig.instance().set_config(config)
        log = log_file(config)
        inside = log is not None and log.parent == folder
        rundir.claim(folder, resuming=resume_from is not None, names=[log.name] if inside else [])
        write_hydra_files(config, task_cfg, folder)
        if inside:
            os.close(open_nofollow(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, rundir.LINK_FIX))
        HydraConfig.instance().set_config(config)
        _validated[folder.resolve()] = run


def set_output_dir(config: DictConfig, folder: Path) -> None:
    with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
        config.hydra.runtime.output_dir = str(folder)


def note_redirect(config: DictConfig, folder: Path, own: Path) -> None:
    """Say where the log goes when ``hydra.run.dir`` was given but the run resumes elsewhere."""
    given = [str(o) for o in config.hydra.overrides.hydra if str(o).startswith("hydra.run.dir=")]
    if given:
        print(
            f"Note: resume={folder} continues the run in {folder}; its log and .hydra/ go "
            f"there, not to hydra.run.dir={own}",
            file=sys.stderr,
        )


def write_hydra_files(config: DictConfig, task_cfg: DictConfig, folder: Path) -> None:
    """``.hydra/config.yaml``, ``hydra.yaml`` and ``overrides.yaml`` as Hydra writes them, but
    atomically and never through a link (a full disk names the file); Hydra then writes no
    ``.hydra/`` of its own."""
    from hydra.core.hydra_config import HydraConfig

    if config.hydra.output_subdir is None:
        return
    target = folder / str(config.hydra.output_subdir)
    refuse_unsafe(target, rundir.LINK_FIX, folder_ok=True)
    hydra_cfg = copy.deepcopy(HydraConfig.instance().cfg)
    texts = {
        "config.yaml": OmegaConf.to_yaml(task_cfg),
        "hydra.yaml": OmegaConf.to_yaml(hydra_cfg),
        "overrides.yaml": OmegaConf.to_yaml(config.hydra.overrides.task),
    }
    try:
        target.mkdir(exist_ok=True)
    except OSError as err:
        raise WriteError(target, err) from err
    for name, text in texts.items():
        write_atomic(target / name, text, rundir.LINK_FIX)
    with read_write(config.hydra), open_dict(config.hydra):
        config.hydra.output_subdir = None


def check_sweep_folder(sweep_dir: Path) -> None:
    """Refuse a sweep folder that holds a symbolic link where the sweep writes: its
    ``multirun.yaml`` or study journal, a job folder, a file of a job folder."""
    if not sweep_dir.is_dir():
        return
    for name in SWEEP_FILES:
        refuse_unsafe(sweep_dir / name, SWEEP_FIX)
    for entry in sorted(os.scandir(sweep_dir), key=lambda e: e.name):
        if entry.is_symlink() and entry.name not in SWEEP_LINKS_ALLOWED:
            target = os.readlink(entry.path)
            raise UnsafePathError(entry.path, f"a symbolic link (to {target})", SWEEP_FIX)
        if entry.is_dir(follow_symlinks=False):
            rundir.check_names(entry.path, fix=SWEEP_FIX)
