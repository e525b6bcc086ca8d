"""The lifelong-learning loop: learn each task, then evaluate every task seen so far.

The runner never knows which strategy it runs; the strategy never sees a logger or a file.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from den.data.streams.base import Stream, Task
from den.loggers.base import Logger
from den.run.evaluation import evaluate
from den.run.record import SPLITS, RunRecord, append_metrics, metrics_lines, peak_rss_mib
from den.strategies.base import Strategy
from den.utils.files import write_json_atomic
from den.utils.interrupt import RunInterrupted, stop_requested

log = logging.getLogger(__name__)


def learn_stream(
    stream: Stream,
    strategy: Strategy,
    record: RunRecord,
    logger: Logger,
    output_dir: str | Path,
    eval_batch_size: int = 4096,
    on_task_end: Callable[[RunRecord], None] | None = None,
) -> RunRecord:
    """Learn ``stream`` task by task, continuing after ``record.tasks_done`` finished tasks.

    After each task: evaluate tasks 0..i on validation and test, extend the matrices, tell
    the logger, then commit the task in this order: ``on_task_end`` (the checkpoint, which
    holds the record), the task's rows appended to ``metrics.jsonl``, ``results.json``
    (status ``running``). Nothing on disk ever runs ahead of the checkpoint, and a resumed run
    rebuilds ``metrics.jsonl`` from the checkpoint (:func:`den.run.record.write_metrics`), so a
    failure between the writes neither duplicates nor loses a row.
    """
    output_dir = Path(output_dir)
    start = time.perf_counter() - record.wall_time_s
    for task in stream.tasks[record.tasks_done :]:
        if stop_requested():  # a signal that arrived while evaluating or committing
            raise RunInterrupted()
        i = task.task_id
        log.info("task %d of %d: %s", i + 1, len(stream), describe_task(task))
        t0 = time.perf_counter()
        report = strategy.learn(task).as_record()
        learn_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        rows = evaluate_seen(strategy, stream.tasks[: i + 1], eval_batch_size)
        eval_s = time.perf_counter() - t0
        record.add_task(rows, strategy, learn_s, eval_s)
        record.tasks.append(
            {"task_id": i, "classes": task.classes, "sizes": task.sizes, "report": report}
        )
        record.wall_time_s = time.perf_counter() - start
        record.peak_rss_mib = max(record.peak_rss_mib, peak_rss_mib())

        for line in metrics_lines(record, i):
            logger.log_evaluation(line)
        summary = task_summary(record, i)
        logger.log_task(i, {**summary, "report": report})  # the strategy's diagnostics
        # The checkpoint first: neither metrics.jsonl nor results.json ever reports a task the
        # checkpoint lacks, so a run killed between the writes resumes after every task shown.
        if on_task_end is not None:
            on_task_end(record)
        append_metrics(record, i, output_dir / "metrics.jsonl")
        write_json_atomic(record.to_json("running"), output_dir / "results.json")
        log.info("after task %d: %s", i + 1, describe_summary(summary, learn_s, eval_s))
        log.info("%s", progress_line(record, len(stream)))
    return record


def describe_summary(summary: dict[str, float], learn_s: float, eval_s: float) -> str:
    return (
        f"avg test acc {summary['avg_acc']:.4f}, avg AUROC {summary['avg_auroc']:.4f}, "
        f"{summary['params']:,} parameters (capacity {summary['capacity']:.2f}, non-zero "
        f"{summary['nonzero_capacity']:.2f}); learned in {learn_s:.1f} s, evaluated in "
        f"{eval_s:.1f} s"
    )


def progress_line(record: RunRecord, num_tasks: int) -> str:
    """``run: 2 of 10 tasks in 1:05, about 4:20 left``: the time left is the tasks to go at
    the mean time of the tasks after the first (a strategy's first task can be unlike the
    rest: DEN's is a single phase), so it is given from the second task on."""
    done = record.tasks_done
    durations = [a + b for a, b in zip(record.learn_time_s, record.eval_time_s, strict=True)]
    later = durations[1:]
    text = f"run: {done} of {num_tasks} tasks in {clock(record.wall_time_s)}"
    if done == num_tasks:
        return text + ", done"
    if not later:
        return text
    return text + f", about {clock(sum(later) / len(later) * (num_tasks - done))} left"


def clock(seconds: float) -> str:
    """``1:05`` or ``1:02:03``."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def describe_task(task: Task) -> str:
    """``classes 0-9, 1,000 train / 500 val / 10,000 test`` (one-vs-rest: ``class 3 vs rest``)."""
    classes = task.classes
    if classes and classes[0] == -1:
        what = f"class {classes[1]} vs the rest"
    elif classes == list(range(classes[0], classes[0] + len(classes))) and len(classes) > 2:
        what = f"classes {classes[0]}-{classes[-1]}"
    else:
        what = "classes " + ",".join(map(str, classes))
    sizes = " / ".join(f"{n:,} {split}" for split, n in task.sizes.items())
    return f"{what}, {sizes}"


def evaluate_seen(
    strategy: Strategy, seen: list[Task], batch_size: int
) -> dict[str, dict[str, list[float]]]:
    """``rows[split][metric]``: the value on each task in ``seen``, for val and test."""
    rows: dict[str, dict[str, list[float]]] = {s: {"acc": [], "auroc": []} for s in SPLITS}
    for task in seen:
        for split in SPLITS:
            scores = evaluate(strategy, task.split(split), task.task_id, batch_size)
            for metric, value in scores.items():
                rows[split][metric].append(value)
    return rows


def task_summary(record: RunRecord, i: int) -> dict[str, float]:
    """The averages after task ``i`` (0-based) that loggers and the log line show."""
    acc = record.square("test", "acc")[i][: i + 1]
    auroc = record.square("test", "auroc")[i][: i + 1]
    val = record.square("val", "acc")[i][: i + 1]
    return {
        "avg_acc": sum(acc) / len(acc),
        "avg_auroc": sum(auroc) / len(auroc),
        "val_avg_acc": sum(val) / len(val),
        "acc_current": acc[-1],
        "params": record.params[i],
        "capacity": record.params[i] / record.base_params,
        "nonzero_params": record.nonzero_params[i],
        "nonzero_capacity": record.nonzero_params[i] / record.base_params,
        "learn_time_s": record.learn_time_s[i],
    }
