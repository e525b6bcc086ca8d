"""Folders and files someone else made, at unit level (the battery's
tests/fault_battery_untrusted.py runs the same through the real commands): no write through a
planted link, no hang on a pipe, stale temporaries of any kind removed, strict JSON, splits
that cannot be evaluated, checkpoints that do not fit, untrusted results files, the end of a
sweep with failed jobs."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

import pytest
import torch
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from den.config.schema import StreamConfig
from den.data.streams.base import build_stream
from den.errors import DataError, JobFailed
from den.models.network import MultiHeadNet
from den.reports.runs import read_results, split_sections
from den.run import rundir
from den.run.checkpoint import record_problem
from den.run.preflight import check_sweep_folder
from den.run.record import RunRecord
from den.run.sweep import end_of_sweep, failures_of
from den.utils.files import (
    UnsafePathError,
    WriteError,
    append_lines,
    finite_json,
    read_bounded,
    remove_stale_temporaries,
    write_atomic,
)

from conftest import synthetic_raw


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "outside" / "victim.txt"
    path.parent.mkdir()
    path.write_text("keep me\n")
    return path


def folder(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    return run


# --------------------------------------------------------------------------- writing


def test_an_atomic_write_refuses_a_link_and_leaves_its_target(tmp_path, victim):
    link = folder(tmp_path) / "results.json"
    link.symlink_to(victim)
    with pytest.raises(UnsafePathError, match="symbolic link") as err:
        write_atomic(link, "{}")
    assert str(link) in str(err.value) and "rm -r" in str(err.value)
    assert victim.read_text() == "keep me\n" and link.is_symlink()
    assert [p.name for p in link.parent.iterdir()] == ["results.json"]  # no temporary left


def test_an_append_refuses_a_dangling_link_without_creating_its_target(tmp_path):
    link = folder(tmp_path) / "metrics.jsonl"
    target = tmp_path / "outside.jsonl"
    link.symlink_to(target)
    with pytest.raises(UnsafePathError, match="metrics.jsonl"):
        append_lines(link, ['{"row": 1}'])
    assert not target.exists()


def test_a_named_pipe_is_refused_at_once_not_waited_on(tmp_path):
    pipe = folder(tmp_path) / "metrics.jsonl"
    os.mkfifo(pipe)
    done = []
    worker = threading.Thread(target=lambda: done.append(_raises(append_lines, pipe, ["x"])))
    worker.start()
    worker.join(timeout=10)
    assert done == [UnsafePathError], "append_lines blocked on a named pipe"
    with pytest.raises(UnsafePathError, match="named pipe"):
        write_atomic(pipe, "x")


def _raises(fn, *args):
    try:
        fn(*args)
    except Exception as err:
        return type(err)
    return None


def test_stale_temporaries_of_any_kind_go_without_following_a_link(tmp_path, victim):
    run = folder(tmp_path)
    (run / ".results.json.tmp11").symlink_to(victim)
    (run / ".checkpoint.pt.tmp12").mkdir()
    (run / ".checkpoint.pt.tmp12" / "part").write_text("x")
    os.mkfifo(run / ".metrics.jsonl.tmp13")
    (run / "results.json").write_text("{}")
    removed = remove_stale_temporaries(run)
    assert len(removed) == 3 and sorted(p.name for p in run.iterdir()) == ["results.json"]
    assert victim.read_text() == "keep me\n"


def test_json_holds_no_bare_nan_and_says_where_it_was(caplog):
    with caplog.at_level(logging.WARNING, logger="den"):
        text = finite_json({"final": {"avg_auroc": float("nan")}, "m": [[1.0, float("inf")]]})
    assert json.loads(text, parse_constant=_refuse) == {
        "final": {"avg_auroc": None},
        "m": [[1.0, None]],
    }
    assert "final.avg_auroc" in caplog.text and "m[0][1]" in caplog.text


def _refuse(constant: str):
    raise AssertionError(f"bare {constant}")


def test_a_write_error_names_a_too_long_name_without_failing_itself(tmp_path):
    err = WriteError(tmp_path / ("x" * 300) / "file", OSError(36, "File name too long"))
    assert "255 bytes" in str(err)


# --------------------------------------------------------------------------- run folders


@pytest.mark.parametrize(
    "name",
    [".den.lock", "checkpoint.pt", "metrics.jsonl", "train.log", ".hydra", ".hydra/hydra.yaml"],
)
def test_claiming_a_run_folder_refuses_a_link_where_den_or_hydra_writes(tmp_path, victim, name):
    run = folder(tmp_path)
    link = run / name
    link.parent.mkdir(exist_ok=True)
    link.symlink_to(victim.parent if name == ".hydra" else victim)
    with pytest.raises(UnsafePathError) as err:
        rundir.claim(run, resuming=True)
    assert str(link) in str(err.value) and not rundir.holds(run)
    assert victim.read_text() == "keep me\n"


def test_a_run_folder_that_is_a_file_or_too_long_a_name_is_named(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(rundir.RunDirError, match="is a file, not a folder"):
        rundir.claim(tmp_path / "file", resuming=False)
    with pytest.raises(rundir.RunDirError, match="255 bytes"):
        rundir.claim(tmp_path / ("r" * 300), resuming=False)


def test_a_sweep_folder_with_a_link_is_refused(tmp_path, victim):
    sweep = tmp_path / "sweep"
    (sweep / "finetune-s0").mkdir(parents=True)
    check_sweep_folder(sweep)  # a job folder an earlier sweep left: fine
    (sweep / "finetune-s1").symlink_to(victim.parent)
    with pytest.raises(UnsafePathError, match="finetune-s1"):
        check_sweep_folder(sweep)
    (sweep / "finetune-s1").unlink()
    (sweep / "finetune-s0" / "results.json").symlink_to(victim)
    with pytest.raises(UnsafePathError, match="results.json"):
        check_sweep_folder(sweep)


def test_a_failure_record_is_left_in_a_free_folder_and_cleared_by_the_next_claim(tmp_path):
    run = folder(tmp_path)
    assert rundir.record_failure(run, {"status": "failed", "error": "x"}) is not None
    assert json.loads((run / "failed.json").read_text())["error"] == "x"
    rundir.claim(run, resuming=False)
    try:
        assert not (run / "failed.json").exists()
    finally:
        rundir.release(run)


# --------------------------------------------------------------------------- streams


def stream_cfg(**changes) -> StreamConfig:
    base = {"name": "t", "kind": "one_vs_rest", "dataset": "mnist", "num_tasks": 2, "val_size": 40}
    return OmegaConf.structured(StreamConfig(**{**base, **changes}))


def test_a_validation_split_of_one_class_is_refused_naming_task_and_split():
    raw = synthetic_raw()
    build_stream(stream_cfg(), seed=0, raw=raw)  # enough examples: fine
    with pytest.raises(DataError, match=r"the val split of task \d .* one class only"):
        build_stream(stream_cfg(val_size=1), seed=0, raw=raw)


def test_an_empty_test_split_is_refused_naming_the_task():
    raw = synthetic_raw()
    raw.test_y[raw.test_y >= 2] = 0  # no test example of classes 2 and 3
    with pytest.raises(DataError, match=r"task 2 \(2, 3\) has no examples in its test split"):
        build_stream(stream_cfg(kind="split", num_tasks=2, classes_per_task=2), seed=0, raw=raw)


# --------------------------------------------------------------------------- checkpoints


def record(**changes) -> dict:
    rec = RunRecord(2, 100)
    rows = {"val": {"acc": [0.5], "auroc": [0.6]}, "test": {"acc": [0.5], "auroc": [0.6]}}
    rec.add_task(rows, _Sizes(), 1.0, 1.0)
    rec.tasks.append({"task_id": 0})
    from dataclasses import asdict

    return {**asdict(rec), **changes}


class _Sizes:
    def num_parameters(self) -> int:
        return 100

    def num_nonzero_parameters(self) -> int:
        return 90


def test_a_consistent_record_passes_and_each_inconsistency_is_named():
    assert record_problem(record()) is None
    assert "params is a str" in record_problem(record(params="many"))
    assert "eval_time_s" in record_problem(record(eval_time_s=[1.0, 2.0]))
    assert "val acc matrix" in record_problem(record(matrices={"val": {}, "test": {}}))
    assert "num_tasks" in record_problem(record(num_tasks="2"))


def test_a_network_state_of_another_size_is_refused_and_den_may_grow():
    small = MultiHeadNet((1, 6, 6), hidden=(8, 4))
    small.add_head(3, 0)
    state = small.state_dict()
    big = MultiHeadNet((1, 6, 6), hidden=(16, 4))
    with pytest.raises(ValueError, match="layer 1 has 8 units where the model config has 16"):
        big.load_state_dict(state)
    grown = MultiHeadNet((1, 6, 6), hidden=(8, 4))
    grown.append_units(0, 1, count=2)  # DEN's expansion: two units of task 2 in layer 1
    grown.add_head(3, 0)
    target = MultiHeadNet((1, 6, 6), hidden=(8, 4))
    with pytest.raises(ValueError, match="only DEN"):
        target.load_state_dict(grown.state_dict())
    target.growable = True
    target.load_state_dict(grown.state_dict())
    assert target.widths() == [10, 4]
    bad_head = {**state, "head_weights.0": torch.zeros(3, 5)}
    with pytest.raises(ValueError, match="head 1 reads 5 inputs"):
        MultiHeadNet((1, 6, 6), hidden=(8, 4)).load_state_dict(bad_head)


# --------------------------------------------------------------------------- results files


def results(tasks: int = 2, **changes) -> dict:
    matrix = [[0.9 if j <= i else None for j in range(tasks)] for i in range(tasks)]
    out = {
        "status": "complete",
        "method": "finetune",
        "stream": "pmnist",
        "tasks_done": tasks,
        "config": {
            "stream": {"name": "pmnist", "num_tasks": tasks},
            "strategy": {"name": "finetune"},
        },
        "acc_matrix": matrix,
        "auroc_matrix": matrix,
        "final": {"avg_acc": 0.9, "avg_auroc": 0.9},
    }
    return {**out, **changes}


@pytest.mark.parametrize(
    "content, why",
    [
        (json.dumps(results(final="oops")), "'final' of \"oops\""),
        (json.dumps(results(final={"avg_acc": None, "avg_auroc": 0.9})), "final.avg_acc = null"),
        (json.dumps(results()).replace("0.9, null", "NaN, null", 1), "holds NaN"),
        (json.dumps(results()).replace("0.9, null", "1e999, null", 1), "finite numbers"),
        (b'{"status": "compl\xffete"}', "not UTF-8"),
        (json.dumps({**results(1), "config": {"stream": {"num_tasks": 10}}}), "1 of its 10 tasks"),
        (json.dumps(results(auroc_matrix=[[0.9]])), "auroc_matrix"),
        (json.dumps(results(stream=["a", "list"])), "not a name"),
        (json.dumps(results(wall_time_s="long")), "wall_time_s"),
    ],
)
def test_a_results_file_with_bad_values_is_refused_with_why(tmp_path, content, why):
    path = tmp_path / "results.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ValueError) as err:
        read_results(path)
    assert why in str(err.value)


def test_reading_is_bounded_and_never_waits_on_a_pipe(tmp_path):
    pipe = tmp_path / "results.json"
    os.mkfifo(pipe)
    with pytest.raises(ValueError, match="not a regular file"):
        read_results(pipe)
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 1000)
    with pytest.raises(ValueError, match="more than"):
        read_bounded(big, 100)


def test_runs_of_different_lengths_never_share_a_table():
    two, three = results(2), results(3)
    for run in (two, three):
        del run["config"]["stream"]["num_tasks"]  # a config that does not say
    sections = split_sections([(Path("a"), two), (Path("b"), three)])
    assert [s.title for s in sections] == ["pmnist, 2 tasks", "pmnist, 3 tasks"]
    assert len({s.slug for s in sections}) == 2


def test_a_stream_name_cannot_aim_a_plot_outside_the_report_folder():
    sneaky = results(stream="../../etc/x")
    (section,) = split_sections([(Path("a"), sneaky)])
    assert "/" not in section.slug and not section.slug.startswith(".")


# --------------------------------------------------------------------------- sweeps


def job(num: int, overrides: list[str], error: Exception | None = None) -> JobReturn:
    ret = JobReturn()
    ret.overrides = overrides
    ret.hydra_cfg = OmegaConf.create(
        {"hydra": {"job": {"num": num}, "runtime": {"output_dir": f"/s/{num}"}}}
    )
    ret.status = JobStatus.FAILED if error else JobStatus.COMPLETED
    ret._return_value = error if error else 0.5
    return ret


def test_the_end_of_a_sweep_lists_each_failed_job_and_exits_1(capsys):
    jobs = [["strategy=finetune", f"seed={s}"] for s in (0, -1, 1)]
    returns = [job(0, jobs[0]), job(1, jobs[1], JobFailed("seed must be >= 0")), job(2, jobs[2])]
    failures = failures_of(returns)
    assert [(f.number, f.folder) for f in failures] == [(1, "/s/1")]
    with pytest.raises(SystemExit) as stop:
        end_of_sweep(failures, jobs)
    assert stop.value.code == 1
    err = capsys.readouterr().err
    assert (
        "1 of 3 jobs of the sweep failed" in err and "#1 seed=-1 (/s/1): seed must be >= 0" in err
    )
    end_of_sweep(failures_of([returns[0], returns[2]]), [jobs[0], jobs[2]])  # none failed
