"""Checkpoints after every task: resume a run that died, losing at most the task in progress.

``checkpoint.pt`` in the run directory holds the strategy's state (the network with DEN's
grown layers and unit timestamps, and whatever the method keeps), the run record (matrices,
timings, reports), the global and batch-order RNG states, and the logger's state (so a
resumed run can continue the same experiment-tracker run). It is written through
:func:`den.utils.files.write_atomic`, so a crash while saving leaves the previous checkpoint intact.

Loading is safe: ``torch.load(weights_only=True)`` unpickles only tensors and plain containers
(dict, list, tuple, str, numbers, None), never code, so a checkpoint someone sent you cannot
run anything. A den checkpoint holds nothing else. A file that is not one (another torch file,
a damaged file) is refused with a :class:`~den.errors.DataError` naming it.
"""

from __future__ import annotations

import dataclasses
import io
from enum import Enum
from pathlib import Path
from typing import Any

import torch
from torch.torch_version import TorchVersion

from den.errors import DataError
from den.run.record import RunRecord
from den.strategies.base import Strategy
from den.utils.files import write_atomic

# Checkpoints written before the run record stored torch's version as a plain str hold
# torch.__version__ itself, a str subclass with comparisons only: allowed, so those runs still
# resume. (add_safe_globals exists from torch 2.4, the oldest version pyproject admits; the
# safe_globals context manager only from 2.5.)
torch.serialization.add_safe_globals([TorchVersion])

CHECKPOINT = "checkpoint.pt"
FORMAT_VERSION = 1
_RECORD_FIELDS = {f.name for f in dataclasses.fields(RunRecord)}


def save_checkpoint(
    output_dir: str | Path, strategy: Strategy, record: RunRecord, logger_state: dict | None = None
) -> Path:
    path = Path(output_dir) / CHECKPOINT
    state = {
        "format": FORMAT_VERSION,
        "strategy": strategy.state_dict(),
        "record": plain(dataclasses.asdict(record)),
        "torch_rng": torch.get_rng_state(),
        "logger": logger_state or {},
    }
    # Serialise in memory, then one atomic write: a full disk gives a WriteError naming the
    # file and leaves neither a temporary file nor a damaged checkpoint behind.
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return write_atomic(path, buffer.getvalue())


def read_checkpoint(output_dir: str | Path) -> dict[str, Any]:
    """The checkpoint of ``output_dir`` as plain data (tensors on the CPU), checked to be a
    den checkpoint; nothing is restored yet (the caller compares the config first)."""
    path = Path(output_dir) / CHECKPOINT
    if not path.is_file():
        raise DataError(
            path,
            "no checkpoint to resume from (the run finished no task, or this is not a run directory)",
            "pass the run directory that holds checkpoint.pt as resume=<dir>, or start a new run without resume",
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # damaged, not a torch file, or holding objects other than data
        text = str(err)
        found = [ln.strip() for ln in text.splitlines() if "GLOBAL" in ln]
        if found:  # torch refused a class: name it
            why = f"it holds objects other than tensors and plain data ({found[0][:160]})"
        elif "Weights only load failed" in text or isinstance(err, EOFError):
            why = "not a torch checkpoint, or a damaged one"
        else:
            first = text.strip().splitlines()[0][:160] if text.strip() else ""
            why = f"{type(err).__name__}: {first}"
        raise DataError(
            path,
            f"not a readable den checkpoint ({why}); den loads only "
            "tensors and plain containers from checkpoints, never pickled code",
            "resume from a run directory that den wrote, or start a new run without resume",
        ) from err
    problem = _shape_problem(state)
    if problem:
        raise DataError(
            path,
            f"not a den checkpoint, or a damaged one ({problem})",
            f"remove {path} and the results.json and metrics.jsonl beside it to start the run "
            "over there, or resume from another run directory that den wrote, or start a new "
            "run without resume",
        )
    return state


def _shape_problem(state: Any) -> str | None:
    """What is wrong with ``state`` as a den checkpoint, or None."""
    if not isinstance(state, dict):
        return f"it holds a {type(state).__name__}, not a dict"
    if state.get("format") != FORMAT_VERSION:
        return f"format {state.get('format')!r}, expected {FORMAT_VERSION}"
    if not isinstance(state.get("strategy"), dict):
        return "no strategy state"
    if not isinstance(state.get("torch_rng"), torch.Tensor):
        return "no RNG state"
    record = state.get("record")
    if not isinstance(record, dict) or not {"num_tasks", "base_params"} <= set(record):
        return "no run record"
    unknown = set(record) - _RECORD_FIELDS
    if unknown:
        return f"unknown record fields {sorted(unknown)}"
    if not isinstance(record.get("meta", {}), dict):
        return "no run metadata"
    return record_problem(record)


def _numbers(value: Any, kind: type | tuple = (int, float)) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, kind) and not isinstance(v, bool) for v in value
    )


def record_problem(record: dict[str, Any]) -> str | None:
    """What makes a checkpoint's run record inconsistent (a list of the wrong type or
    length, a matrix of the wrong shape), or None."""
    size, base = record.get("num_tasks"), record.get("base_params")
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        return f"record: num_tasks is {size!r}"
    if not isinstance(base, int) or isinstance(base, bool) or base < 1:
        return f"record: base_params is {base!r}"
    params = record.get("params", [])
    if not _numbers(params, int) or len(params) > size:
        return f"record: params is {_kind(params)}, not a list of at most {size} integers"
    done = len(params)
    lengths = {"learn_time_s": done, "eval_time_s": done, "tasks": done}
    if record.get("nonzero_params"):  # empty in records written before the key
        lengths["nonzero_params"] = done
    for key, length in lengths.items():
        value = record.get(key, [])
        ok = isinstance(value, list) and len(value) == length
        if not ok or (key != "tasks" and not _numbers(value)):
            return f"record: {key} is {_kind(value)}, not {length} numbers like params"
    if not all(isinstance(t, dict) for t in record.get("tasks", [])):
        return "record: tasks is not a list of task records"
    for key in ("wall_time_s", "peak_rss_mib"):
        if not _numbers([record.get(key, 0.0)]):
            return f"record: {key} is {_kind(record.get(key))}"
    return _matrices_problem(record.get("matrices", {}), done, size)


def _matrices_problem(matrices: Any, done: int, size: int) -> str | None:
    if not isinstance(matrices, dict):
        return "record: matrices is not a dict"
    for split in ("val", "test"):
        for metric in ("acc", "auroc"):
            rows = (
                matrices.get(split, {}).get(metric)
                if isinstance(matrices.get(split), dict)
                else None
            )
            ok = isinstance(rows, list) and len(rows) == done
            ok = ok and all(
                isinstance(row, list)
                and len(row) == size
                and _numbers(row[: i + 1])
                and all(v is None for v in row[i + 1 :])
                for i, row in enumerate(rows)
            )
            if not ok:
                return (
                    f"record: the {split} {metric} matrix is not {done} rows of {size} "
                    "(numbers up to the diagonal)"
                )
    return None


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return f"a {type(value).__name__}"


def refuse_unfit(path: Path, why: str) -> DataError:
    """The error for a checkpoint that cannot continue this run: which files to remove."""
    folder = path.parent
    return DataError(
        path,
        f"the checkpoint does not fit this run ({why})",
        "resume with the overrides of the original run; or, to start this run over in "
        f"{folder}, remove {path} and the results.json and metrics.jsonl beside it; or start "
        "a new run in another folder without resume",
    )


def check_fits(path: str | Path, record: RunRecord, num_tasks: int, base_params: int) -> None:
    """Refuse a restored record made for another stream or another network size."""
    path = Path(path) / CHECKPOINT if Path(path).is_dir() else Path(path)
    if record.num_tasks != num_tasks:
        raise refuse_unfit(path, f"its run has {record.num_tasks} tasks, this stream {num_tasks}")
    if record.base_params != base_params:
        raise refuse_unfit(
            path,
            f"its base network has {record.base_params:,} parameters, this run's model config "
            f"gives {base_params:,}",
        )


def saved_config(state: dict[str, Any]) -> dict[str, Any]:
    """The composed config the checkpointed run started with ({} for very old checkpoints)."""
    config = state["record"].get("meta", {}).get("config", {})
    return config if isinstance(config, dict) else {}


def restore(path: str | Path, state: dict[str, Any], strategy: Strategy) -> tuple[RunRecord, dict]:
    """Load ``state`` (from :func:`read_checkpoint`) into ``strategy`` and the global RNG;
    return the run record and the logger's saved state."""
    try:
        strategy.load_state_dict(_to_device(state["strategy"], strategy.device))
        torch.set_rng_state(state["torch_rng"].cpu())
        record = RunRecord(**state["record"])
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as err:
        file = Path(path) / CHECKPOINT if Path(path).is_dir() else Path(path)
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
        why = first if isinstance(err, ValueError) else f"{type(err).__name__}: {first}"
        raise refuse_unfit(file, f"its strategy and model state: {why}") from err
    logger_state = state.get("logger", {})
    return record, logger_state if isinstance(logger_state, dict) else {}


def load_checkpoint(output_dir: str | Path, strategy: Strategy) -> tuple[RunRecord, dict]:
    """Restore ``strategy`` and the global RNG from ``output_dir``; return the run record and
    the logger's saved state."""
    return restore(output_dir, read_checkpoint(output_dir), strategy)


def plain(value: Any) -> Any:
    """``value`` with every leaf a plain Python type (str, int, float, bool, None) or a tensor:
    what ``torch.load(weights_only=True)`` reads back. A subclass (``torch.__version__`` is a
    str subclass, an enum member) becomes its base value; anything else its ``str``."""
    if value is None or isinstance(value, torch.Tensor):
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, Enum):
        return value.name
    for kind in (int, float, str):
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return str(value)


def _to_device(value: Any, device: torch.device) -> Any:
    """``value`` with every tensor moved to ``device`` (RNG states stay on the CPU)."""
    if isinstance(value, torch.Tensor):
        return value if value.dtype == torch.uint8 else value.to(device)
    if isinstance(value, dict):
        return type(value)((k, _to_device(v, device)) for k, v in value.items())
    if isinstance(value, list | tuple):
        return type(value)(_to_device(v, device) for v in value)
    return value
