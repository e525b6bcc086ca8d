"""``hydra/sweeper=den_optuna``: an optuna (>= 4) search driven by Hydra's launchers.

Each batch asks the study for as many trials as the launcher runs at once (the joblib
launcher's ``n_jobs``, a SLURM array's ``array_parallelism``, else one), launches them as
ordinary jobs and tells the study what each job's task function returned: one value per
objective of ``hydra.sweeper.objectives`` (den.train returns validation figures and capacity
only, see den/search.py). A job that fails is told as a failed trial and the search goes on.

The study lives in an optuna journal file, ``<hydra.sweep.dir>/optuna.journal`` by default:
one file, no database server, safe for several processes on one shared filesystem. Running
the same command again adds ``n_trials`` more trials to the same study; its trial folders are
``trial_<number>_<hash of the overrides>`` (the overrides themselves are in each trial's
``.hydra/overrides.yaml``).

This module is imported by Hydra's plugin scan on every start, so optuna is imported only
when a search runs.
"""

# No `from __future__ import annotations` here: Hydra's plugin scan runs this module before
# it is in sys.modules, where dataclasses would look its string annotations up.
import hashlib
import logging
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import CompactHydraException
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


@dataclass
class DenOptunaSweeperConf:
    _target_: str = "hydra_plugins.den_optuna_sweeper.den_optuna_sweeper.DenOptunaSweeper"
    # the sampler is built by the search (which imports optuna), not when Hydra starts
    _recursive_: bool = False
    # any optuna sampler; its seed: null keeps a continued search from repeating proposals
    sampler: Any = field(
        default_factory=lambda: {"_target_": "optuna.samplers.TPESampler", "seed": None}
    )
    # objective name (den/search.py: val_avg_acc, val_avg_auroc, capacity) -> direction;
    # two or more make a multi-objective study that keeps the Pareto front
    objectives: dict[str, str] = field(default_factory=lambda: {"val_avg_acc": "maximize"})
    study_name: str = "den"
    # journal file (a path; relative to the working directory) or a database URL;
    # null: <hydra.sweep.dir>/optuna.journal
    storage: str | None = None
    n_trials: int = 20  # trials this command adds to the study
    n_jobs: int | None = None  # trials per batch; null: what the launcher runs at once
    # search space: key -> interval(a, b) | tag(log, interval(a, b)) | range(a, b, step=s) |
    # choice(x, y, ...) (Hydra's sweep syntax), or a plain value fixed in every trial; a sweep
    # override on the command line adds to it; null removes a key an inherited config set
    params: dict[str, str | None] = field(default_factory=dict)


ConfigStore.instance().store(
    group="hydra/sweeper", name="den_optuna", node=DenOptunaSweeperConf, provider="den"
)


class SearchConfigError(ValueError):
    """A search setting that cannot work, with the key and the fix in the message."""


class SearchStopped(CompactHydraException):
    """Every trial so far failed; Hydra prints the message alone and exits 1."""


def distribution_of(override: Override) -> Any:
    """The optuna distribution of one sweep override.

    ``interval(a, b)`` is a float in [a, b] (``tag(log, ...)`` samples its logarithm,
    ``tag(int, ...)`` makes it an integer); ``range(a, b, step=s)`` the values Hydra's range
    gives (b excluded); ``choice(...)`` / ``x,y`` one of the values, passed on as written.
    """
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    key = override.get_key_element()
    value = override.value()
    tags = set(getattr(value, "tags", None) or ())
    if isinstance(value, IntervalSweep):
        low, high = value.start, value.end
        if "int" in tags:
            return IntDistribution(int(low), int(high), log="log" in tags)
        return FloatDistribution(float(low), float(high), log="log" in tags)
    if isinstance(value, RangeSweep):
        values = sorted(override.sweep_iterator())
        if not values:
            raise SearchConfigError(f"Search parameter {key}: {override.input_line} is empty")
        step = abs(value.step)
        if all(isinstance(v, int) for v in values):
            return IntDistribution(values[0], values[-1], step=int(step))
        return FloatDistribution(float(values[0]), float(values[-1]), step=float(step))
    if isinstance(value, ChoiceSweep) or override.is_discrete_sweep():
        return CategoricalDistribution(list(override.sweep_string_iterator()))
    raise SearchConfigError(f"Search parameter {key}: {override.input_line} is not a sweep")


def as_override_value(value: Any) -> str:
    """A sampled value as Hydra override text (floats exact, choices as written)."""
    return repr(value) if isinstance(value, float) else str(value)


def trial_subdir(number: int, overrides: list[str]) -> str:
    """``trial_0007_1a2b3c4d``: the trial number and a short hash of its overrides."""
    digest = hashlib.sha1("\n".join(sorted(overrides)).encode()).hexdigest()[:8]
    return f"trial_{number:04d}_{digest}"


def quiet_optuna() -> None:
    """optuna's messages through Hydra's log format (no colour codes), warnings only."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()


class DenOptunaSweeper(Sweeper):
    def __init__(
        self,
        sampler: Any,
        objectives: dict[str, str],
        study_name: str,
        storage: str | None,
        n_trials: int,
        n_jobs: int | None,
        params: dict[str, str | None] | None,
    ) -> None:
        self.sampler_cfg = sampler
        self.objectives = {str(k): str(v) for k, v in objectives.items()}
        self.study_name = study_name
        self.storage = storage
        self.n_trials = n_trials
        self.n_jobs = n_jobs
        # null drops a key (den_pareto.yaml removes den_optuna.yaml's tau and sigma)
        self.params = {str(k): str(v) for k, v in (params or {}).items() if v is not None}
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher: Any = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    # ------------------------------------------------------------------ the search space

    def search_space(self, arguments: list[str]) -> tuple[list[str], dict[str, Any]]:
        """(fixed overrides of every trial, {key: optuna distribution}). The command line's
        overrides win over ``hydra.sweeper.params`` for the same key."""
        assert self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        by_key: dict[str, Override] = {}
        lines = [f"{k}={v}" for k, v in self.params.items()] + list(arguments)
        for override in parser.parse_overrides(lines):
            # by the plain key: python -m den.train passes settings as ++key=value
            by_key[override.key_or_group] = override
        fixed, space = [], {}
        for key, override in by_key.items():
            if override.is_sweep_override():
                space[key] = distribution_of(override)
            else:
                element = override.get_key_element()
                fixed.append(f"{element}={override.get_value_element_as_str()}")
        if not space:
            raise SearchConfigError(
                "hydra.sweeper.params is empty and no sweep override was given, so there is "
                "nothing to search. Fix: set hydra.sweeper.params (hparams_search=den_optuna "
                "or den_pareto does) or add e.g. 'strategy.tau=tag(log, interval(0.001, 0.3))'"
            )
        return fixed, space

    def batch_size(self) -> int:
        """``n_jobs``, else the launcher's parallelism (joblib n_jobs, SLURM array), else 1."""
        if self.n_jobs is not None:
            if self.n_jobs < 1:
                raise SearchConfigError(
                    f"hydra.sweeper.n_jobs={self.n_jobs}: must be >= 1. Fix: give the number "
                    "of trials to run at once, or null to follow the launcher"
                )
            return self.n_jobs
        assert self.config is not None
        launcher = self.config.hydra.launcher
        n = launcher.get("n_jobs") or launcher.get("array_parallelism") or 1
        return (os.cpu_count() or 1) if n < 0 else int(n)

    def comparable_overrides(self, fixed: list[str]) -> list[str]:
        """The fixed overrides that change results: without hydra.* and the keys Hydra's
        job names leave out (threads, device, data root, ...)."""
        assert self.config is not None
        excluded = set(self.config.hydra.job.config.override_dirname.exclude_keys)
        kept = []
        for line in fixed:
            key = line.split("=", 1)[0].lstrip("+~")
            if key.startswith("hydra") or key in excluded:
                continue
            kept.append(line)
        return sorted(kept)

    # ------------------------------------------------------------------ the study

    def open_study(self, sweep_dir: Path, fixed: list[str]) -> Any:
        """Create the study or continue it; refuse one that searched something else."""
        import optuna

        from den.reports.objectives import check_objectives, open_storage, storage_path

        check_objectives(self.objectives)
        with warnings.catch_warnings():
            # constant_liar / multivariate TPE are marked experimental; chosen knowingly
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            from hydra.utils import instantiate

            sampler = instantiate(self.sampler_cfg) if self.sampler_cfg else None
        storage = open_storage(self.storage, sweep_dir)
        where = storage_path(self.storage, sweep_dir) or self.storage
        names, directions = list(self.objectives), list(self.objectives.values())
        study = optuna.create_study(
            study_name=self.study_name,
            storage=storage,
            sampler=sampler,
            directions=directions,
            load_if_exists=True,
        )
        comparable = self.comparable_overrides(fixed)
        saved = study.user_attrs
        if not saved.get("objectives"):  # a new study (or one another process just created)
            study.set_user_attr("objectives", names)
            study.set_user_attr("fixed_overrides", comparable)
        elif saved["objectives"] != names:
            raise SearchConfigError(
                f"Study '{self.study_name}' in {where} optimises {saved['objectives']}, this "
                f"command asks for {names} (hydra.sweeper.objectives). Fix: use another "
                "hydra.sweeper.study_name or hydra.sweep.dir for a different search"
            )
        elif saved.get("fixed_overrides", comparable) != comparable:
            raise SearchConfigError(
                f"Study '{self.study_name}' in {where} was run with the overrides "
                f"{saved['fixed_overrides']}, this command has {comparable}; its trials would "
                "not be comparable. Fix: rerun with the same overrides to continue it, or give "
                "this search its own hydra.sweeper.study_name or hydra.sweep.dir"
            )
        return study

    # ------------------------------------------------------------------ the sweep

    def sweep(self, arguments: list[str]) -> list[JobReturn]:
        assert self.config is not None and self.launcher is not None
        import optuna
        from optuna.trial import TrialState

        quiet_optuna()
        fixed, space = self.search_space(arguments)
        sweep_dir = Path(str(self.config.hydra.sweep.dir)).absolute()
        sweep_dir.mkdir(parents=True, exist_ok=True)
        from den.utils.files import write_atomic

        write_atomic(sweep_dir / "multirun.yaml", OmegaConf.to_yaml(self.config))
        study = self.open_study(sweep_dir, fixed)
        batch = self.batch_size()
        states = [t.state for t in study.get_trials(deepcopy=False)]
        log.info(
            "study %s (%s) in %s: %d finished trials so far%s; adding %d, %d at a time",
            self.study_name,
            ", ".join(f"{d} {n}" for n, d in self.objectives.items()),
            sweep_dir,
            states.count(TrialState.COMPLETE),
            f", {states.count(TrialState.RUNNING)} marked running elsewhere"
            if TrialState.RUNNING in states
            else "",
            self.n_trials,
            batch,
        )
        from den.run.sweep import end_of_sweep

        returns: list[JobReturn] = []
        failures: list[Any] = []
        remaining = self.n_trials
        while remaining > 0:
            trials = [study.ask(space) for _ in range(min(batch, remaining))]
            returns += self.run_batch(study, trials, fixed, sweep_dir, failures)
            remaining -= len(trials)
            ran = self.n_trials - remaining
            if len(failures) == ran and ran >= min(3, self.n_trials):
                # every trial so far failed: a setting they all share, not bad luck
                raise SearchStopped(
                    f"The first {ran} trials of this search all failed, so it stops; the "
                    f"first error: {failures[0].error}\nFix: correct the setting the trials "
                    "share, then run the same command again to continue the study"
                )
        self.log_outcome(study, optuna)
        # lists failed trials and exits 1
        end_of_sweep(failures, [ret.overrides or [] for ret in returns], "trials")
        return returns

    def run_batch(
        self, study: Any, trials: list, fixed: list[str], sweep_dir: Path, failures: list[Any]
    ) -> list[JobReturn]:
        """Launch one batch of asked trials as jobs and tell the study each outcome; a
        failed trial is appended to ``failures`` (a :class:`den.run.sweep.JobFailure`)."""
        from optuna.trial import TrialState

        from den.run.sweep import JobFailure

        jobs = []
        for trial in trials:
            params = [f"{k}={as_override_value(v)}" for k, v in trial.params.items()]
            subdir = trial_subdir(trial.number, fixed + params)
            trial.set_user_attr("job_dir", str(sweep_dir / subdir))
            trial.set_user_attr("overrides", fixed + params)
            jobs.append([*fixed, *params, f"hydra.sweep.subdir={subdir}"])
        told: set[int] = set()
        try:
            self.validate_batch_is_legal(jobs)
            results = self.launcher.launch(jobs, initial_job_idx=trials[0].number)
            for trial, result in zip(trials, results, strict=True):
                error = self.tell(study, trial, result)
                told.add(trial.number)
                if error:
                    folder = str(trial.user_attrs.get("job_dir", ""))
                    overrides = [str(o) for o in trial.user_attrs.get("overrides", [])]
                    failures.append(JobFailure(trial.number, overrides, folder, error))
        finally:  # a crash or Ctrl-C of the search: its open trials are failed, not lost
            for trial in trials:
                if trial.number not in told:
                    trial.set_user_attr("error", "the search stopped during this trial")
                    study.tell(trial, state=TrialState.FAIL)
        return list(results)

    def tell(self, study: Any, trial: Any, result: JobReturn) -> str | None:
        """Tell the study one job's outcome; returns an error message for a failed trial."""
        from optuna.trial import TrialState

        if result.status != JobStatus.COMPLETED:
            from den.errors import JobFailed

            failure = result._return_value
            error = str(failure) if isinstance(failure, JobFailed) else repr(failure)
            log.warning(
                "trial %d failed: %s (%s)", trial.number, error, trial.user_attrs.get("job_dir")
            )
            trial.set_user_attr("error", error[:2000])
            study.tell(trial, state=TrialState.FAIL)
            return error
        value = result.return_value
        values = list(value) if isinstance(value, list | tuple) else [value]
        if len(values) != len(self.objectives):
            raise SearchConfigError(
                f"The task function returned {value!r} ({len(values)} values) for a study of "
                f"{len(self.objectives)} objectives (hydra.sweeper.objectives: "
                f"{list(self.objectives)}). Fix: return one value per objective, in order"
            )
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
            error = f"returned {value!r}, not finite"
            log.warning("trial %d %s: told as failed", trial.number, error)
            study.tell(trial, state=TrialState.FAIL)
            return error
        study.tell(trial, [float(v) for v in values])
        return None

    def log_outcome(self, study: Any, optuna: Any) -> None:
        """The best trial, or the Pareto front, in the log; `python -m den.pareto` makes the report."""
        completed = study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.COMPLETE])
        if not completed:
            return
        names = list(self.objectives)
        front = sorted(study.best_trials, key=lambda t: t.number)
        label = "best trial" if len(names) == 1 else f"Pareto front ({len(front)} trials)"
        log.info("%s of %d finished trials:", label, len(completed))
        for t in front:
            values = ", ".join(f"{n} {v:.4f}" for n, v in zip(names, t.values, strict=True))
            log.info("  trial %d: %s  %s", t.number, values, t.params)
        sweep_dir = self.config.hydra.sweep.dir if self.config is not None else "<sweep dir>"
        log.info("report: python -m den.pareto %s", sweep_dir)
