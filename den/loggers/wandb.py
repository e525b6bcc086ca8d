"""``logger=wandb``: Weights & Biases, one W&B run per job, offline without an API key."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from den.config.registry import LOGGERS
from den.config.schema import LoggerConfig, StrEnum
from den.loggers.base import Logger
from den.utils.wandb_key import has_wandb_key

log = logging.getLogger(__name__)


class WandbMode(StrEnum):
    online = "online"
    offline = "offline"
    disabled = "disabled"


@dataclass
class WandbLoggerConfig(LoggerConfig):
    """Weights & Biases settings (:class:`WandbLogger`)."""

    name: str = "wandb"
    project: str = "den"
    entity: str | None = None  # None = the API key's default entity
    # online | offline | disabled; None = $WANDB_MODE, else online when WANDB_API_KEY (or
    # ~/.netrc) holds a key, else offline (never a login prompt)
    mode: WandbMode | None = None
    tags: list[str] = field(default_factory=list)
    notes: str | None = None
    group: str | None = None  # None = the experiment name (+ the sweep id in a multirun)
    log_train_loss: bool = True  # the training loss every trainer.log_every steps
    init_timeout: float = 60.0  # seconds wandb.init may take before the run goes on without it


@LOGGERS.register("wandb", WandbLoggerConfig)
class WandbLogger(Logger):
    """One W&B run per job, laid out as a dashboard that compares methods.

    - group = the sweep, job_type = the method (the strategy config chosen, e.g.
      ``den_pmnist``), name = method, seed and a short hash of the other overrides, tags =
      experiment, stream, method (built by :func:`den.train.job_info`);
    - the run config = the resolved config without where files live (``paths``,
      ``stream.root``, ``logger``...), with the device actually used, the method and den's
      version and git commit;
    - on the ``task`` axis (1-based): test/val averages, each task's accuracy and AUROC,
      capacity and, under ``diagnostics/``, what the strategy reported (DEN: units selected,
      expansion units kept, units split, widths, non-zero parameters, per layer);
    - on the ``train/step`` axis: the training loss of each phase (``train/<phase>/loss``:
      DEN's sparse, selective, expansion, split_retrain... apart) and the learning rate;
    - at the end: the accuracy/AUROC matrices as annotated heatmaps, every final metric as a
      ``final/*`` summary key, and results.json plus ``.hydra/`` as an artifact.

    Never stops training: if ``wandb.init`` or any later call fails (no network, bad key,
    invalid mode), it warns once and the run continues with its local files only.

    Args:
        cfg: the ``logger`` config (:class:`WandbLoggerConfig`).
        meta: the run record's metadata (``config``, ``method``, ``versions``...).
        output_dir: the run directory; offline files go to ``<output_dir>/wandb``.
        job: ``group``, ``job_type``, ``name``, ``tags`` and ``device`` of the run.
    """

    def __init__(
        self,
        cfg: Any,
        output_dir: str | Path,
        meta: dict[str, Any] | None = None,
        job: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(cfg, output_dir)
        job = job or {"group": "default", "job_type": "run", "name": Path(output_dir).name}
        self.run_config = wandb_config(meta or {}, job.get("device"))
        self.job = job
        self.run: Any = None
        self.run_id: str | None = None
        self.train_step = 0  # steps over all phases and tasks: the train/step axis
        self._phase: tuple[int, str] | None = None
        self._phase_step = 0
        self._rows: list[dict[str, Any]] = []

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> None:
        mode = resolve_wandb_mode(self.cfg.mode)
        try:
            import wandb

            # wandb's own messages (artifact uploads...) follow its process-wide setup
            wandb.setup(settings=wandb.Settings(silent=True))
            self.run = wandb.init(
                project=self.cfg.project,
                entity=self.cfg.entity,
                group=self.cfg.group or self.job["group"],
                job_type=self.job["job_type"],
                name=self.job["name"],
                tags=list(dict.fromkeys([*self.job.get("tags", []), *self.cfg.tags])),
                notes=self.cfg.notes,
                config=self.run_config,
                dir=self.wandb_dir,
                mode=mode,
                id=self.run_id,
                resume="allow" if self.run_id else None,
                settings=wandb.Settings(init_timeout=self.cfg.init_timeout, silent=True),
            )
            self.run_id = self.run.id
            self.run.define_metric("task")
            self.run.define_metric("train/step")
            for key in ("train/*", "val/loss"):  # training curves: every logging interval
                self.run.define_metric(key, step_metric="train/step")
            for prefix in ("test", "val", "progress", "diagnostics", "phases"):
                self.run.define_metric(f"{prefix}/*", step_metric="task")
            log.info("W&B run %s (%s mode) in %s", self.run.id, mode, self.wandb_dir)
        except Exception as err:  # noqa: BLE001 - any W&B failure must leave training running
            self._give_up("wandb.init", err)

    def close(self, failed: bool = False) -> None:
        if self.run is None:
            return
        try:
            self.run.finish(exit_code=1 if failed else 0)
        except Exception as err:  # noqa: BLE001
            self._give_up("finish", err)
        self.run = None

    # ----------------------------------------------------------------- metrics
    @property
    def wandb_dir(self) -> str:
        """Where W&B keeps its files: ``$WANDB_DIR`` when set, else the run directory."""
        return os.environ.get("WANDB_DIR") or str(self.output_dir)

    def log_training(self, event: dict[str, Any]) -> None:
        """``train/loss`` and ``train/lr`` every logging interval and ``val/loss`` at every
        validation check, on the ``train/step`` axis (every phase of every task in turn)."""
        if not self.cfg.log_train_loss:
            return
        phase = (event["task"], event["phase"])
        if phase != self._phase:  # a new phase counts its steps from 0
            self._phase, self._phase_step = phase, 0
        self.train_step += event["step"] - self._phase_step
        self._phase_step = event["step"]
        data = {"train/step": self.train_step, "train/task": event["task"] + 1}
        if "loss" in event:
            data.update({"train/loss": event["loss"], "train/lr": event["lr"]})
        if "val_loss" in event:
            data["val/loss"] = event["val_loss"]
        self._log(data)

    def log_evaluation(self, row: dict[str, Any]) -> None:
        self._rows.append(row)

    def log_task(self, task_index: int, metrics: dict[str, Any]) -> None:
        data: dict[str, Any] = {"task": task_index + 1}
        data["test/avg_acc"] = metrics["avg_acc"]
        data["test/avg_auroc"] = metrics["avg_auroc"]
        data["val/avg_acc"] = metrics["val_avg_acc"]
        data["test/acc_current"] = metrics["acc_current"]
        data["progress/params"] = metrics["params"]
        data["progress/capacity"] = metrics["capacity"]
        data["progress/nonzero_capacity"] = metrics["nonzero_capacity"]
        data["progress/learn_time_s"] = metrics["learn_time_s"]
        for row in self._rows:
            data[f"{row['split']}/acc_task{row['task'] + 1}"] = row["acc"]
            data[f"{row['split']}/auroc_task{row['task'] + 1}"] = row["auroc"]
        data.update(diagnostics(metrics.get("report") or {}))
        self._rows = []
        self._log(data)

    def log_final(self, results: dict[str, Any]) -> None:
        if self.run is None:
            return
        try:
            import wandb

            from den.reports.plots import matrix_figure, pyplot

            images = {}
            for key, name, metric in (
                ("acc_matrix", "test accuracy", "accuracy"),
                ("auroc_matrix", "test AUROC", "AUROC"),
            ):
                title = f"{results.get('method', '')} seed {results.get('seed')}: {name}"
                fig = matrix_figure(results[key], title, name, metric)
                images[key] = wandb.Image(fig)
                pyplot().close(fig)
            self.run.log(images)
            columns, rows = matrix_table(results)
            self.run.log({"matrices": wandb.Table(columns=columns, data=rows)})
            self.run.summary.update(final_summary(results))
            self.run.summary.update(compact_results(results))
            self._log_artifact()
        except Exception as err:  # noqa: BLE001
            self._give_up("log_final", err)

    def _log_artifact(self) -> None:
        """results.json and the Hydra config (.hydra/) of the run directory, as one artifact."""
        import wandb

        artifact = wandb.Artifact(
            f"run-{self.run.id}", type="run-results", description=str(self.output_dir)
        )
        artifact.add_file(str(self.output_dir / "results.json"))
        if (self.output_dir / ".hydra").is_dir():
            artifact.add_dir(str(self.output_dir / ".hydra"), name=".hydra")
        self.run.log_artifact(artifact)

    # ----------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "train_step": self.train_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.run_id = state.get("run_id")
        self.train_step = state.get("train_step", 0)

    # ----------------------------------------------------------------- helpers
    def _log(self, data: dict[str, Any]) -> None:
        if self.run is None:
            return
        try:
            self.run.log(data)
        except Exception as err:  # noqa: BLE001
            self._give_up("log", err)

    def _give_up(self, where: str, err: Exception) -> None:
        cause = f"{type(err).__name__}: {err}"
        if "timed out" in str(err).lower() or "timeout" in str(err).lower():
            # W&B's own text suggests wandb.init(settings=...), which a den user cannot pass
            cause = (
                f"{type(err).__name__}: no answer from W&B within logger.init_timeout="
                f"{self.cfg.init_timeout} s; raise logger.init_timeout, or use "
                "logger.mode=offline and `wandb sync` later"
            )
        warnings.warn(
            f"W&B {where} failed ({cause}); training goes on without W&B, "
            f"results stay in {self.output_dir}",
            RuntimeWarning,
            stacklevel=3,
        )
        log.warning("W&B %s failed (%s); continuing without W&B", where, cause)
        run, self.run = self.run, None
        if run is not None and where != "finish":
            with contextlib.suppress(Exception):  # already giving up
                run.finish(exit_code=1)


# The keys of results.json that den.compare needs, stored in the W&B summary under "results".
COMPACT_KEYS = (
    "status",
    "method",
    "strategy",
    "stream",
    "seed",
    "tasks_done",
    "final",
    "acc_matrix",
    "auroc_matrix",
    "avg_acc_curve",
    "capacity_per_task",
    "params_per_task",
    "nonzero_capacity_per_task",
    "nonzero_params_per_task",
    "wall_time_s",
    "peak_rss_mib",
)


def compact_results(results: dict[str, Any]) -> dict[str, Any]:
    return {"results": {k: results[k] for k in COMPACT_KEYS if k in results}}


# Config keys that say where files live or how the run is watched, not what ran.
NOISE_KEYS = ("paths", "logger", "resume", "stream.root", "stream.download", "trainer.progress")


def wandb_config(meta: dict[str, Any], device: str | None) -> dict[str, Any]:
    """The W&B run config: the resolved config without :data:`NOISE_KEYS`, with the device
    used (``device`` in the config says ``auto``; it is kept as ``device_requested``), the
    method and den's version and git commit."""
    config = json.loads(json.dumps(meta.get("config", {}), default=str))  # a deep copy
    for dotted in NOISE_KEYS:
        *parents, last = dotted.split(".")
        node = config
        for part in parents:
            node = node.get(part, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(last, None)
    if "device" in config:
        config["device_requested"] = config["device"]
    config["device"] = device or meta.get("device")
    config["method"] = meta.get("method")
    config["versions"] = meta.get("versions", {})
    return config


def matrix_table(results: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """(columns, rows) of every defined cell of the four matrices: one row per (after task,
    task), 1-based, with test and validation accuracy and AUROC; rows of several runs can be
    averaged in W&B (a table, unlike the heatmap images)."""
    columns = ["after_task", "task", "test_acc", "test_auroc", "val_acc", "val_auroc"]
    keys = ("acc_matrix", "auroc_matrix", "val_acc_matrix", "val_auroc_matrix")
    matrices = [results.get(k) or [] for k in keys]
    rows = []
    for i in range(len(matrices[0])):
        for j in range(i + 1):
            values = [m[i][j] if i < len(m) else None for m in matrices]
            rows.append([i + 1, j + 1, *values])
    return columns, rows


def diagnostics(report: dict[str, Any]) -> dict[str, float]:
    """Every number of a strategy's task report (:meth:`TaskReport.as_record`), without
    knowing its fields: ``diagnostics/<field>`` for a number; for a list (one entry per
    layer) ``diagnostics/<field>/layer<l>`` (1-based) and its ``/total`` (counts) or
    ``/mean`` (fractions); a dict one level down (``diagnostics/step_seconds/expansion``).
    The phases go to ``phases/<phase>/<steps|seconds|val_loss|...>``."""
    out: dict[str, float] = {}
    for key, value in report.items():
        prefix = "phases" if key == "phases" else f"diagnostics/{key}"
        out.update(_numbers(prefix, value))
    return out


def _numbers(name: str, value: Any) -> dict[str, float]:
    if isinstance(value, bool | int | float):
        return {name: float(value)}
    if isinstance(value, dict):
        out: dict[str, float] = {}
        for key, item in value.items():
            out.update(_numbers(f"{name}/{key}", item))
        return out
    numbers = (
        isinstance(value, list)
        and value
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    )
    if not numbers:
        return {}
    out = {f"{name}/layer{layer}": float(v) for layer, v in enumerate(value, 1)}
    if all(isinstance(v, int) for v in value):
        out[f"{name}/total"] = float(sum(value))
    else:
        out[f"{name}/mean"] = sum(value) / len(value)
    return out


def final_summary(results: dict[str, Any]) -> dict[str, float]:
    """Every final metric as a top-level ``final/*`` summary key: the ``final`` block (avg
    acc, AUROC, BWT, forgetting, capacity and, when recorded, non-zero capacity), the mean
    accuracy and AUROC of each task right after it was learned, each task's final accuracy
    (``final/acc_task<j>``), wall time, peak memory."""
    out = {f"final/{k}": v for k, v in results.get("final", {}).items()}
    for key, name in (("acc_matrix", "learned_acc"), ("auroc_matrix", "learned_auroc")):
        matrix = results.get(key) or []
        diagonal = [row[j] for j, row in enumerate(matrix) if row[j] is not None]
        if diagonal:
            out[f"final/{name}"] = sum(diagonal) / len(diagonal)
    for key in ("wall_time_s", "peak_rss_mib", "tasks_done"):
        if key in results:
            out[f"final/{key}"] = results[key]
    last = (results.get("acc_matrix") or [[]])[-1]
    for j, value in enumerate(last, 1):  # each task's accuracy at the end
        if value is not None:
            out[f"final/acc_task{j}"] = value
    return out


def resolve_wandb_mode(mode: str | None) -> str:
    """The configured mode; else ``$WANDB_MODE``; else online with an API key, offline
    without one (so W&B never prompts for a login)."""
    mode = mode or os.environ.get("WANDB_MODE") or None
    if mode in ("online", "run", None) and not has_wandb_key():
        if mode is not None:
            log.warning(
                "logger.mode=online but no W&B API key (WANDB_API_KEY or ~/.netrc): logging offline"
            )
        return "offline"
    return "online" if mode in (None, "run") else mode
