"""Entry point: ``python -m den.train +experiment=pmnist [overrides]``.

Compose (Hydra) -> validate once (:mod:`den.config.validate`) -> build (:mod:`den.run.build`)
-> learn the stream task by task (:mod:`den.run.loop`) -> write ``results.json`` /
``metrics.jsonl`` into the run directory. A mistake in the config or the data stops the run
before training with one paragraph naming the key or file (exit status 2);
``HYDRA_FULL_ERROR=1`` adds the traceback.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import hydra
import torch
from omegaconf import DictConfig

from den import OPENMP_WAIT
from den.config.schema import RunConfig
from den.config.store import register_configs
from den.config.validate import validate_config
from den.data.streams.base import Stream, build_stream
from den.engine.training import step_listener
from den.errors import DenError, JobFailed
from den.loggers.base import Logger
from den.models.network import build_network
from den.reports.objectives import TrialError, in_search, task_return
from den.run import rundir
from den.run.build import build_logger, build_strategy, resolve_device, setup_torch
from den.run.checkpoint import (
    check_fits,
    read_checkpoint,
    restore,
    save_checkpoint,
    saved_config,
)
from den.run.loop import learn_stream
from den.run.preflight import validated
from den.run.provenance import config_record, job_info, method_name, versions
from den.run.record import RunRecord, write_metrics
from den.run.resume import check_resume_config, resume_dir
from den.run.summary import print_summary
from den.run.sweep import in_multirun, record_failure
from den.strategies.base import Strategy
from den.utils.files import write_json_atomic
from den.utils.interrupt import RunInterrupted, install_handlers

log = logging.getLogger("den.train")
register_configs()


def run(cfg: RunConfig | DictConfig) -> dict[str, Any]:
    """One run of a config; a composed one (tests, notebooks) is validated first. Returns
    the results dict that was written to disk."""
    return train(cfg if isinstance(cfg, RunConfig) else validate_config(cfg))


def train(run_cfg: RunConfig) -> dict[str, Any]:
    """One run of a validated config; returns the results dict that was written to disk.

    The run directory is claimed first (:mod:`den.run.rundir`): one run per directory,
    reused only by ``resume``."""
    started = time.perf_counter()
    resume_from = resume_dir(run_cfg)
    output_dir = resume_from or Path(run_cfg.paths.output_dir)
    acquired = rundir.claim(output_dir, resuming=resume_from is not None)
    try:
        return _train_in(run_cfg, output_dir, resume_from is not None, started)
    finally:
        if acquired:
            rundir.release(output_dir)


def _train_in(run: RunConfig, output_dir: Path, resuming: bool, started: float) -> dict[str, Any]:
    install_handlers()  # from here on a signal stops the run cleanly, also while data loads
    state = None
    if resuming:
        # Compare the configs before anything is loaded into a strategy: another strategy's
        # checkpoint would otherwise fail in its load_state_dict instead of being named.
        state = read_checkpoint(output_dir)
        check_resume_config(run, saved_config(state), output_dir)
    device = resolve_device(run.device)
    threads_rule = setup_torch(run, device, saved_threads(state))
    stream = build_stream(run.stream, run.seed)
    strategy, record = _start(run, stream, device, threads_rule)
    logger_state: dict = {}
    if state is not None:
        record, logger_state = _resume(output_dir, state, strategy, stream, record)
        started -= record.wall_time_s
    log.info(
        "%s on %s (%d tasks), model %s (%s params), device %s, %d threads (%s), output %s",
        run.strategy.name,
        run.stream.name,
        len(stream),
        run.model.name,
        f"{record.base_params:,}",
        device,
        torch.get_num_threads(),
        threads_rule,
        output_dir,
    )
    logger = build_logger(run, output_dir, record.meta, job_info(run, output_dir, str(device)))
    logger.load_state_dict(logger_state)
    results = _learn(run, stream, strategy, record, logger, output_dir, started)
    print_summary(record)
    log.info("results: %s", output_dir / "results.json")
    return results


def saved_threads(state: dict[str, Any] | None) -> int | None:
    """The thread count a checkpoint's run used, if it recorded one."""
    if state is None:
        return None
    threads = state["record"].get("meta", {}).get("threads")
    return threads if isinstance(threads, int) and threads >= 1 else None


def _start(
    run: RunConfig, stream: Stream, device: torch.device, threads_rule: str
) -> tuple[Strategy, RunRecord]:
    """The strategy and an empty run record; capacity is counted against one base network
    with one head."""
    input_shape = stream.tasks[0].input_shape
    base = build_network(run.model, input_shape)
    base.add_head(stream.tasks[0].num_classes, 0)
    torch.manual_seed(run.seed)  # the strategy's network starts from the same seed either way
    strategy = build_strategy(run, input_shape, device)
    meta = {
        "experiment": run.experiment,
        "method": method_name(run),  # the strategy config chosen, e.g. den_pmnist
        "strategy": run.strategy.name,
        "stream": run.stream.name,
        "model": run.model.name,
        "seed": run.seed,
        "seeds": {"stream": run.seed, "init": run.seed, "batches": run.seed + 1},
        "device": str(device),
        "threads": torch.get_num_threads(),
        "threads_rule": threads_rule,  # how the count was chosen (den/utils/threads.py)
        "openmp_wait": dict(OPENMP_WAIT),  # OpenMP's wait policy and who set it
        "versions": {
            **versions(),
            "torch": str(torch.__version__),
            "python": platform.python_version(),
        },
        "config": config_record(run),
    }
    return strategy, RunRecord(len(stream), base.num_parameters(), meta)


def _resume(
    output_dir: Path, state: dict[str, Any], strategy: Strategy, stream: Stream, fresh: RunRecord
) -> tuple[RunRecord, dict]:
    """Load the checkpoint into ``strategy`` (checked against ``fresh``, the record this
    config starts with); the record and the logger's state it held."""
    record, logger_state = restore(output_dir, state, strategy)
    check_fits(output_dir, record, fresh.num_tasks, fresh.base_params)
    record.meta["resumed_at_task"] = record.meta.get("resumed_at_task", []) + [record.tasks_done]
    log.info("resuming %s after %d finished tasks", output_dir, record.tasks_done)
    # metrics.jsonl may hold rows of a task the checkpoint lacks (or miss rows it has):
    # rebuild it from the checkpoint, the one record of what is finished.
    write_metrics(record, output_dir / "metrics.jsonl")
    strategy.resume_tasks(stream.tasks[: record.tasks_done])
    return record, logger_state


def _learn(
    run: RunConfig,
    stream: Stream,
    strategy: Strategy,
    record: RunRecord,
    logger: Logger,
    output_dir: Path,
    started: float,
) -> dict[str, Any]:
    """Learn the remaining tasks with ``logger`` open; write the complete results.json."""
    failed = True
    try:
        logger.start()
        with step_listener(logger.log_training):
            learn_stream(
                stream,
                strategy,
                record,
                logger,
                output_dir,
                run.trainer.eval_batch_size,
                on_task_end=lambda r: save_checkpoint(output_dir, strategy, r, logger.state_dict()),
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
    return results


def _log_to_file_only(message: str) -> None:
    """Write ``message`` to the run's log file(s) but not to the console (stderr gets it)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.emit(logging.LogRecord("den.train", logging.ERROR, "", 0, message, None, None))


def _output_dir() -> Path:
    """This job's run directory, as Hydra set it."""
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


# An absolute path: the same whether this file runs as __main__ or is imported by a launcher.
CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")


@hydra.main(config_path=CONFIG_DIR, config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | tuple[float, ...]:
    """Hydra's task function; returns validation figures only: the objectives the search
    asks for (``hydra.sweeper.objectives``: validation accuracy/AUROC, capacity), else the
    validation average accuracy (den/reports/objectives.py).

    A single run that fails exits with den's message (status 2). A job of a sweep raises
    instead, having written ``failed.json`` into its folder, so the sweep goes on and lists
    it at the end (den/run/sweep.py); a signal still stops the whole sweep."""
    try:
        run_cfg = validated(cfg, _output_dir())  # the one validation (or the callback's)
        results = train(run_cfg)
    except DenError as err:
        sweep_job = in_multirun() and not isinstance(err, RunInterrupted)
        if os.environ.get("HYDRA_FULL_ERROR") == "1" and not sweep_job:
            raise
        _log_to_file_only(f"Error: {err}")  # train.log says why the run stopped
        if sweep_job:
            _fail_job(str(err), err.exit_code, err)
        print(f"\nError: {err}\n", file=sys.stderr)
        sys.exit(err.exit_code)
    except Exception as err:  # a defect, not a user's mistake: its traceback goes to the log
        if not in_multirun():
            raise
        log.exception("the job failed")
        _fail_job(f"{type(err).__name__}: {err} (traceback in {_output_dir()}/train.log)", 1, err)
    return task_return(results)


def _fail_job(message: str, exit_code: int, cause: BaseException) -> NoReturn:
    """Record a failed job of a sweep in its folder and raise what the sweeper lists."""
    record_failure(_output_dir(), message, exit_code)
    error = TrialError(message) if in_search() else JobFailed(message)
    raise error from cause


if __name__ == "__main__":
    # Run the task function of the importable module, not of __main__: launchers that pickle
    # it (joblib, submitit) can then send it by name to their worker processes.
    from den.config.help import help_page
    from den.config.overrides import CONFIG_DIR as CONF
    from den.config.overrides import prepare_command_line
    from den.train import main as task_function

    if not sys.argv[1:] or {"--help", "-h"} & set(sys.argv[1:]):
        print(help_page(CONF))  # den's page, not Hydra's (which lists the schema groups)
        sys.exit(0)
    try:
        sys.argv[1:] = prepare_command_line(sys.argv[1:])
    except DenError as error:
        print(f"\nError: {error}\n", file=sys.stderr)
        sys.exit(error.exit_code)
    task_function()
