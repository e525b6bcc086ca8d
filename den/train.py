"""Entry point: ``python -m den.train +experiment=pmnist [overrides]``.

Builds the stream, the strategy and the logger from the composed Hydra config, runs the
stream, and writes ``results.json`` / ``metrics.jsonl`` into Hydra's output directory. A
mistake in the config or the data stops the run before training with one paragraph naming
the key or file (exit status 2); ``HYDRA_FULL_ERROR=1`` shows the traceback instead.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from den import rundir
from den.checkpoint import read_checkpoint, restore, save_checkpoint, saved_config
from den.data.streams import build_stream
from den.errors import ConfigError, DenError
from den.files import write_json_atomic
from den.interrupt import RunInterrupted, install_handlers
from den.loggers import build_logger
from den.models.network import build_network
from den.provenance import method_name, versions
from den.results import RunRecord, print_summary, write_metrics
from den.runner import run_stream
from den.schemas import register_configs
from den.search import TrialError, in_search, task_return
from den.strategies.registry import build_strategy
from den.training import step_listener
from den.validation import validate_config

log = logging.getLogger("den.train")
register_configs()


def resolve_device(name: str) -> torch.device:
    """``auto`` = CUDA when present, else Apple's MPS, else the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ConfigError("device", name, str(err), "use auto, cpu, cuda, cuda:N or mps") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "device", name, "CUDA is not available on this machine", "use device=auto or device=cpu"
        )
    return device


def setup_torch(cfg: DictConfig, device: torch.device) -> None:
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)  # network initialisation
    if cfg.deterministic:
        if device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=device.type != "cpu")


def run(cfg: DictConfig) -> dict[str, Any]:
    """One run of one config; returns the results dict that was written to disk.

    The run directory is claimed first (:mod:`den.rundir`): one run per directory, reused
    only by ``resume``."""
    started = time.perf_counter()
    validate_config(cfg)
    resume_from = resume_dir(cfg)
    output_dir = resume_from or Path(cfg.paths.output_dir)
    acquired = rundir.claim(output_dir, resuming=resume_from is not None)
    try:
        return _run_in(cfg, output_dir, resume_from is not None, started)
    finally:
        if acquired:
            rundir.release(output_dir)


def _run_in(cfg: DictConfig, output_dir: Path, resuming: bool, started: float) -> dict[str, Any]:
    install_handlers()  # from here on a signal stops the run cleanly, also while data loads
    state = None
    if resuming:
        # Compare the configs before anything is loaded into a strategy: another strategy's
        # checkpoint would otherwise fail in its load_state_dict instead of being named.
        state = read_checkpoint(output_dir)
        check_resume_config(cfg, saved_config(state), output_dir)
    device = resolve_device(cfg.device)
    setup_torch(cfg, device)

    stream = build_stream(cfg.stream, cfg.seed)
    input_shape = stream.tasks[0].input_shape
    base = build_network(cfg.model, input_shape)
    base.add_head(stream.tasks[0].num_classes, 0)
    torch.manual_seed(cfg.seed)  # the strategy's network starts from the same seed either way
    strategy = build_strategy(cfg.strategy, cfg.model, cfg.trainer, input_shape, device, cfg.seed)
    record = RunRecord(
        num_tasks=len(stream),
        base_params=base.num_parameters(),
        meta={
            "experiment": cfg.experiment,
            "method": method_name(cfg),  # the strategy config chosen, e.g. den_pmnist
            "strategy": cfg.strategy.name,
            "stream": cfg.stream.name,
            "model": cfg.model.name,
            "seed": cfg.seed,
            "seeds": {"stream": cfg.seed, "init": cfg.seed, "batches": cfg.seed + 1},
            "device": str(device),
            "threads": torch.get_num_threads(),
            "versions": {
                **versions(),
                "torch": str(torch.__version__),
                "python": platform.python_version(),
            },
            "config": config_container(cfg),
        },
    )
    logger_state: dict = {}
    if state is not None:
        record, logger_state = restore(output_dir, state, strategy)
        record.meta["resumed_at_task"] = record.meta.get("resumed_at_task", []) + [
            record.tasks_done
        ]
        log.info("resuming %s after %d finished tasks", output_dir, record.tasks_done)
        # metrics.jsonl may hold rows of a task the checkpoint lacks (or miss rows it has):
        # rebuild it from the checkpoint, the one record of what is finished.
        write_metrics(record, output_dir / "metrics.jsonl")
        strategy.resume_tasks(stream.tasks[: record.tasks_done])
        started -= record.wall_time_s
    log.info(
        "%s on %s (%d tasks), model %s (%s params), device %s, output %s",
        cfg.strategy.name,
        cfg.stream.name,
        len(stream),
        cfg.model.name,
        f"{record.base_params:,}",
        device,
        output_dir,
    )
    logger = build_logger(cfg.logger, output_dir, record.meta, job_info(cfg, output_dir, device))
    logger.load_state_dict(logger_state)
    failed = True
    try:
        logger.start()
        with step_listener(logger.log_training):
            run_stream(
                stream,
                strategy,
                record,
                logger,
                output_dir,
                cfg.trainer.eval_batch_size,
                on_task_end=lambda rec: save_checkpoint(
                    output_dir, strategy, rec, logger.state_dict()
                ),
            )
        record.wall_time_s = time.perf_counter() - started
        results = record.to_json("complete")
        write_json_atomic(results, output_dir / "results.json")
        logger.log_final(results)
        failed = False
    except RunInterrupted as stop:
        raise RunInterrupted(output_dir, record.tasks_done) from stop
    finally:
        logger.close(failed=failed)
    print_summary(record)
    log.info("results: %s", output_dir / "results.json")
    return results


def config_container(cfg: DictConfig) -> dict[str, Any]:
    """The composed config as plain data (enums as their names), as saved in results.json and
    in the checkpoint."""
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)


def job_info(cfg: DictConfig, output_dir: Path, device: torch.device) -> dict[str, Any]:
    """W&B identity of this job (see :class:`den.loggers.WandbLogger`).

    ``group`` = the sweep: ``<experiment>-<sweep dir>`` in a multirun, ``<experiment>-<run
    dir>`` for a single run (``logger.group`` overrides both, e.g. to gather single runs);
    ``job_type`` = the method (the strategy config chosen); ``name`` = method, seed and a
    short hash of the other overrides (the same for the seeds of one setting), under 40
    characters; ``tags`` = experiment, stream, method; ``device`` = the device used."""
    multirun, overrides, sweep_id = False, "", ""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hydra_cfg = HydraConfig.get()
        multirun = hydra_cfg.mode == RunMode.MULTIRUN
        overrides = hydra_cfg.job.override_dirname
        sweep_id = Path(hydra_cfg.sweep.dir).name
    except ValueError:  # not started by Hydra (tests, notebooks)
        pass
    method = method_name(cfg)
    setting = ",".join(
        o for o in overrides.split(",") if o and not o.startswith(("seed=", "strategy="))
    )
    digest = hashlib.sha1(setting.encode()).hexdigest()[:6] if setting else ""
    name = f"{method[:24]}-s{cfg.seed}" + (f"-{digest}" if digest else "")
    return {
        "group": f"{cfg.experiment}-{sweep_id if multirun else output_dir.name}",
        "job_type": method,
        "name": name,
        "tags": [str(cfg.experiment), str(cfg.stream.name), method],
        "device": str(device),
    }


# Config sections that must match for a resumed run to continue the same experiment.
RESUME_KEYS = ("stream", "model", "strategy", "trainer", "seed")
# Settings that change what a run prints, not what it learns: a resume may change them.
DISPLAY_ONLY_KEYS = frozenset({"trainer.progress", "trainer.log_every"})


def resume_dir(cfg: DictConfig, own: str | Path | None = None) -> Path | None:
    """The directory to continue: ``resume=<dir>``, this run's own with ``resume=true``, or
    this run's own only if it holds a checkpoint with ``resume=auto`` (a SLURM job that was
    requeued after preemption continues; a first start starts fresh). ``own``: this run's
    directory (default ``paths.output_dir``)."""
    if not cfg.resume:
        return None
    own_dir = Path(own if own is not None else cfg.paths.output_dir)
    if str(cfg.resume).lower() == "true":
        return own_dir
    if str(cfg.resume).lower() == "auto":
        return own_dir if (own_dir / "checkpoint.pt").is_file() else None
    path = Path(cfg.resume).expanduser()
    if not path.is_dir():
        raise ConfigError(
            "resume",
            cfg.resume,
            "no such run directory",
            "pass the folder that holds checkpoint.pt",
        )
    return path


def check_resume_config(cfg: DictConfig, saved: dict[str, Any], output_dir: Path) -> None:
    """Refuse to continue the run in ``output_dir`` with a different experiment: the first
    setting of RESUME_KEYS that differs from ``saved`` (the checkpoint's config) is named."""
    now = config_container(cfg)
    for key in RESUME_KEYS:
        if key not in saved:
            continue
        defaults = _schema_defaults(cfg[key]) if isinstance(cfg[key], DictConfig) else {}
        differs = _first_difference(key, saved[key], now[key], defaults)
        if differs is not None:
            dotted, before, after = differs
            raise ConfigError(
                dotted,
                after,
                f"differs from the run being resumed in {output_dir} ({before!r})",
                "resume with the same overrides as the original run",
            )


_MISSING = object()


def _schema_defaults(node: DictConfig) -> dict[str, Any]:
    """Default value of every field of the dataclass schema behind ``node`` ({} without one)."""
    schema = OmegaConf.get_type(node)
    if not dataclasses.is_dataclass(schema):
        return {}
    defaults = {}
    for f in dataclasses.fields(schema):
        if f.default is not dataclasses.MISSING:
            defaults[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            defaults[f.name] = f.default_factory()
    return defaults


def _first_difference(
    key: str, saved: Any, now: Any, defaults: dict[str, Any]
) -> tuple[str, Any, Any] | None:
    """(dotted key, saved value, current value) of the first difference, or None.

    A key the saved run does not have (added to the schema since the run started) counts as
    equal when its current value is the schema's default, so runs started by an older
    version resume as long as the new option is left at its default."""
    if not (isinstance(saved, dict) and isinstance(now, dict)):
        return None if saved == now else (key, saved, now)
    # The name first: another strategy differs in its name, not in some option it lacks.
    for name in sorted(set(saved) | set(now), key=lambda n: (n != "name", n)):
        if f"{key}.{name}" in DISPLAY_ONLY_KEYS:
            continue
        old, new = saved.get(name, _MISSING), now.get(name, _MISSING)
        if old is _MISSING and name in defaults and new == defaults[name]:
            continue
        if old != new:
            return (
                f"{key}.{name}",
                None if old is _MISSING else old,
                None if new is _MISSING else new,
            )
    return None


def _log_to_file_only(message: str) -> None:
    """Write ``message`` to the run's log file(s) but not to the console (stderr gets it)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.emit(logging.LogRecord("den.train", logging.ERROR, "", 0, message, None, None))


# An absolute path: the same whether this file runs as __main__ or is imported by a launcher.
CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")


@hydra.main(config_path=CONFIG_DIR, config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | tuple[float, ...]:
    """Hydra's task function; returns validation figures only: the objectives the search
    asks for (``hydra.sweeper.objectives``: validation accuracy/AUROC, capacity), else the
    validation average accuracy (den/search.py)."""
    try:
        results = run(cfg)
    except DenError as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        _log_to_file_only(f"Error: {err}")  # train.log says why the run stopped
        if in_search() and not isinstance(err, RunInterrupted):
            # the search records this trial as failed, with the message, and goes on
            raise TrialError(str(err)) from None
        print(f"\nError: {err}\n", file=sys.stderr)
        sys.exit(err.exit_code)
    return task_return(results)


if __name__ == "__main__":
    # Run the task function of the importable module, not of __main__: launchers that pickle
    # it (joblib, submitit) can then send it by name to their worker processes.
    from den.train import main as task_function

    task_function()
