"""``python -m den.bench mode=threads``: den's thread policy alone and beside busy processes.

In one command, medians over ``load.repeats`` rounds:

- the run ``load.run`` (``python -m den.train``, one process per run, as a user starts it)
  for every variant of ``load.variants`` (the ``threads`` setting and the OpenMP environment:
  ``today`` is PyTorch's thread count with libgomp's own wait, spinning a few ms before it
  sleeps, the behaviour before den chose a policy; ``1``, ``2`` and ``auto``, den's default,
  under den's policy), alone and beside ``load.neighbours`` busy single-thread processes that
  the benchmark starts itself (torch matmuls on one thread): the run's wall time and ms per
  training step of every DEN phase (``results.json``: ``tasks[*].report.phases``);
- a sweep of ``load.sweep_jobs`` such runs (``seed=0..n-1``, ``-m``) with each launcher of
  ``load.sweep_launchers`` (``basic``: one job after another; ``joblib``: its default
  ``n_jobs``, one job per CPU at a time), threads left at the default: wall time.

Every run records the CPU time the rest of the machine used meanwhile (``background_cpus``,
Linux only: busy CPU seconds of the machine minus the run's and the neighbours', per second),
so figures taken beside other people's work say so. The variants' environments are exactly
what ``load.variants`` gives: ``OMP_WAIT_POLICY``, ``GOMP_SPINCOUNT``, ``OMP_NUM_THREADS`` and
``MKL_NUM_THREADS`` of the calling shell are not passed on.

Writes ``threads.json`` (settings, every run, the medians) and ``threads.md`` (the tables,
:func:`threads_tables` of the record) into the output directory.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("den.bench")
REPO_ROOT = Path(__file__).resolve().parent.parent
CLEARED_ENV = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
PHASES = ("sparse", "head_fit", "selective", "expansion", "split_train", "split_retrain")
# A busy single-thread neighbour: torch matmuls on one thread, forever.
NEIGHBOUR = (
    "import torch\n"
    "torch.set_num_threads(1)\n"
    "a = torch.rand(384, 384) / 384\n"
    "print('ready', flush=True)\n"
    "while True:\n"
    "    a = torch.tanh(a @ a + 0.5)\n"
)


# --------------------------------------------------------------------------- CPU accounting
def machine_busy_s() -> float | None:
    """Busy CPU seconds of the whole machine since boot (Linux ``/proc/stat``), or None."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """CPU seconds process ``pid`` has used (Linux ``/proc/<pid>/stat``), 0 when unknown."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    rest = text[text.rindex(")") + 2 :].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CpuWatch:
    """The CPUs the rest of the machine kept busy between :meth:`start` and :meth:`stop`:
    everything but this process's finished children and the ``exclude`` processes."""

    def __init__(self, exclude: list[int]) -> None:
        self.exclude = exclude

    def start(self) -> CpuWatch:
        self.t0, self.busy0 = time.perf_counter(), machine_busy_s()
        self.children0 = children_cpu_s()
        self.others0 = sum(process_cpu_s(p) for p in self.exclude)
        return self

    def stop(self) -> tuple[float, float | None]:
        """(elapsed seconds, background CPUs or None)."""
        elapsed = time.perf_counter() - self.t0
        busy = machine_busy_s()
        if busy is None or self.busy0 is None:
            return elapsed, None
        ours = children_cpu_s() - self.children0
        ours += sum(process_cpu_s(p) for p in self.exclude) - self.others0
        return elapsed, round(max(busy - self.busy0 - ours, 0.0) / elapsed, 2)


# --------------------------------------------------------------------------- processes
def _die_with_parent() -> None:
    """In a neighbour, before it runs: end it when the benchmark dies (a killed benchmark
    must not leave busy processes behind, they would slow every later measurement)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the finally clause below still ends them
        pass


@contextlib.contextmanager
def neighbours(count: int) -> Iterator[list[int]]:
    """``count`` busy single-thread processes, running (past their imports) while inside."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", NEIGHBOUR],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=_die_with_parent,
        )
        for _ in range(count)
    ]
    try:
        for proc in procs:
            if proc.stdout is None or proc.stdout.readline().strip() != "ready":
                raise RuntimeError("a busy neighbour did not start")
        yield [p.pid for p in procs]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def child_env(extra: dict[str, Any]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED_ENV}
    env.update({str(k): str(v) for k, v in extra.items()})
    return env


def den_train(args: list[str], env: dict[str, str], watch: CpuWatch) -> dict[str, Any]:
    """Run ``python -m den.train *args``; its wall seconds and the background CPUs."""
    watch.start()
    proc = subprocess.run(
        [sys.executable, "-m", "den.train", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed, background = watch.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"den.train {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return {"wall_s": round(elapsed, 3), "background_cpus": background}


def phase_ms(results: dict[str, Any]) -> dict[str, float]:
    """ms per training step of every phase over all tasks, and ``all`` of them together."""
    steps: dict[str, int] = {}
    seconds: dict[str, float] = {}
    for task in results["tasks"]:
        for name, phase in task["report"].get("phases", {}).items():
            steps[name] = steps.get(name, 0) + int(phase["steps"])
            seconds[name] = seconds.get(name, 0.0) + float(phase["seconds"])
    out = {n: round(1000 * seconds[n] / steps[n], 3) for n in steps if steps[n]}
    total = sum(steps.values())
    if total:
        out["all"] = round(1000 * sum(seconds.values()) / total, 3)
    return out


# --------------------------------------------------------------------------- the study
def threads_arg(value: Any) -> str:
    return "threads=null" if value is None else f"threads={value}"


def measure_runs(cfg: DictConfig, out: Path) -> list[dict[str, Any]]:
    """Every variant x neighbour count x repeat of ``load.run``, rounds interleaved."""
    variants = list(cfg.load.variants)
    rows = []
    for repeat in range(cfg.load.repeats):
        order = variants[repeat % len(variants) :] + variants[: repeat % len(variants)]
        for count in cfg.load.neighbours:
            with neighbours(int(count)) as pids:
                for name in order:
                    spec = cfg.load.variants[name]
                    run_dir = out / "runs" / f"{name}-n{count}-r{repeat}"
                    args = [*cfg.load.run, threads_arg(spec.threads), f"hydra.run.dir={run_dir}"]
                    row = den_train(args, child_env(spec.get("env") or {}), CpuWatch(pids))
                    results = json.loads((run_dir / "results.json").read_text())
                    row.update(
                        variant=name, neighbours=int(count), repeat=repeat,
                        threads=results["threads"], phase_ms=phase_ms(results),
                        openmp_wait=results.get("openmp_wait"),
                    )  # fmt: skip
                    rows.append(row)
                    log.info(
                        "round %d, %d busy beside, %s: %.1f s (background %s CPUs)",
                        repeat, count, name, row["wall_s"], row["background_cpus"],
                    )  # fmt: skip
    return rows


def measure_sweeps(cfg: DictConfig, out: Path) -> list[dict[str, Any]]:
    """The ``load.sweep_jobs``-job sweep with every launcher, rounds interleaved."""
    seeds = ",".join(str(s) for s in range(cfg.load.sweep_jobs))
    rows = []
    for repeat in range(cfg.load.repeats):
        for launcher in cfg.load.sweep_launchers:
            sweep_dir = out / "sweeps" / f"{launcher}-r{repeat}"
            args = ["-m", *cfg.load.run, f"seed={seeds}", f"hydra/launcher={launcher}"]
            row = den_train([*args, f"hydra.sweep.dir={sweep_dir}"], child_env({}), CpuWatch([]))
            jobs = [json.loads(p.read_text()) for p in sorted(sweep_dir.rglob("results.json"))]
            if len(jobs) != cfg.load.sweep_jobs:
                raise RuntimeError(f"{sweep_dir}: {len(jobs)} of {cfg.load.sweep_jobs} jobs ran")
            row.update(
                launcher=launcher, repeat=repeat, jobs=len(jobs),
                threads=[j["threads"] for j in jobs],
                threads_rule=sorted({j.get("threads_rule", "") for j in jobs}),
            )  # fmt: skip
            rows.append(row)
            log.info("round %d, sweep with %s: %.1f s", repeat, launcher, row["wall_s"])
    return rows


def median_of(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return round(statistics.median(values), 3) if values else None


def summarise(runs: list[dict[str, Any]], sweeps: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians per variant and neighbour count, and per sweep launcher."""
    cells = []
    for name in dict.fromkeys(r["variant"] for r in runs):
        for count in sorted({r["neighbours"] for r in runs}):
            group = [r for r in runs if r["variant"] == name and r["neighbours"] == count]
            phases = dict.fromkeys(p for r in group for p in r["phase_ms"])
            cells.append(
                {
                    "variant": name,
                    "neighbours": count,
                    "threads": group[0]["threads"],
                    "wall_s": median_of(group, "wall_s"),
                    "background_cpus": median_of(group, "background_cpus"),
                    "phase_ms": {
                        p: round(statistics.median(r["phase_ms"][p] for r in group), 3)
                        for p in phases
                        if all(p in r["phase_ms"] for r in group)
                    },
                }
            )
    launchers = []
    for launcher in dict.fromkeys(r["launcher"] for r in sweeps):
        group = [r for r in sweeps if r["launcher"] == launcher]
        launchers.append(
            {
                "launcher": launcher,
                "wall_s": median_of(group, "wall_s"),
                "background_cpus": median_of(group, "background_cpus"),
                "threads": group[0]["threads"],
            }
        )
    return {"runs": cells, "sweeps": launchers}


# --------------------------------------------------------------------------- tables
def _cell(summary: dict[str, Any], variant: str, count: int) -> dict[str, Any] | None:
    for cell in summary["runs"]:
        if cell["variant"] == variant and cell["neighbours"] == count:
            return cell
    return None


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b else "-"


def runs_table(record: dict[str, Any]) -> list[str]:
    summary, counts = record["summary"], record["settings"]["neighbours"]
    head = ["variant", "threads", *(f"{_beside(c)} s" for c in counts)]
    head += [f"{_beside(c)} / alone" for c in counts if c]
    head += [f"ms/step {_beside(c)}" for c in counts]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name in record["settings"]["variants"]:
        cells = [_cell(summary, name, c) for c in counts]
        if not any(cells):
            continue
        alone = _cell(summary, name, 0)
        row = [name, str(next(c for c in cells if c)["threads"])]
        row += [f"{c['wall_s']:.1f}" if c else "-" for c in cells]
        row += [_ratio(c and c["wall_s"], alone and alone["wall_s"]) for c in cells[1:]]
        row += [f"{c['phase_ms'].get('all', 0):.2f}" if c else "-" for c in cells]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _beside(count: int) -> str:
    return "alone" if count == 0 else f"+{count} busy"


def phases_table(record: dict[str, Any]) -> list[str]:
    cells = record["summary"]["runs"]
    phases = [p for p in PHASES if any(p in c["phase_ms"] for c in cells)]
    phases += sorted({p for c in cells for p in c["phase_ms"]} - set(phases) - {"all"})
    head = ["variant", "beside", *phases]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for c in cells:
        values = [f"{c['phase_ms'][p]:.2f}" if p in c["phase_ms"] else "-" for p in phases]
        lines.append(
            f"| {c['variant']} | {_beside(c['neighbours'])} | " + " | ".join(values) + " |"
        )
    return lines


def sweeps_table(record: dict[str, Any]) -> list[str]:
    sweeps = record["summary"]["sweeps"]
    if not sweeps:
        return []
    first = sweeps[0]["wall_s"]
    lines = [
        f"| {record['settings']['sweep_jobs']}-job sweep | wall s | threads per job | vs {sweeps[0]['launcher']} |",
        "| --- | --- | --- | --- |",
    ]
    for s in sweeps:
        threads = ",".join(str(t) for t in s["threads"])
        lines.append(
            f"| {s['launcher']} | {s['wall_s']:.1f} | {threads} | {_ratio(s['wall_s'], first)} |"
        )
    return lines


def checks(record: dict[str, Any]) -> list[str]:
    """The issue's targets, read from the medians."""
    summary, settings = record["summary"], record["settings"]
    default, baseline = settings["default"], settings["baseline"]
    alone, beside = _cell(summary, default, 0), _cell(summary, default, 1)
    base = _cell(summary, baseline, 0)
    lines = []
    if alone and beside:
        ratio = _ratio(beside["wall_s"], alone["wall_s"])
        lines.append(
            f"- {default} beside 1 busy process / {default} alone: {ratio} (target <= 1.5)"
        )
    if alone and base:
        ratio = _ratio(alone["wall_s"], base["wall_s"])
        lines.append(f"- {default} alone / {baseline} alone: {ratio} (target <= 1.10)")
    sweeps = summary["sweeps"]
    if len(sweeps) >= 2:
        ratio = _ratio(sweeps[1]["wall_s"], sweeps[0]["wall_s"])
        lines.append(
            f"- {sweeps[1]['launcher']} sweep / {sweeps[0]['launcher']} sweep: {ratio} (target <= 0.6)"
        )
    return lines


def threads_tables(record: dict[str, Any]) -> str:
    """The Markdown of a ``threads.json`` record (what ``mode=threads`` prints)."""
    s = record["settings"]
    background = [
        c["background_cpus"] for c in record["summary"]["runs"] if c["background_cpus"] is not None
    ]
    parts = [
        *runs_table(record), "", *phases_table(record), "", *sweeps_table(record), "",
        *checks(record), "",
        f"{s['cpus']} CPUs; medians of {s['repeats']} rounds; run: python -m den.train "
        f"{' '.join(s['run'])}; busy neighbours: single-thread torch matmul loops; "
        f"background CPUs (other work on the machine, median per cell): "
        f"{min(background, default=0):.2f}-{max(background, default=0):.2f}",
    ]  # fmt: skip
    return "\n".join(parts)


def run_threads_bench(cfg: DictConfig, out: Path) -> dict[str, Any]:
    """``mode=threads``: measure, write ``threads.json`` and ``threads.md``, print the tables."""
    from den.utils.threads import available_cpus

    runs = measure_runs(cfg, out)
    sweeps = measure_sweeps(cfg, out) if cfg.load.sweep_jobs else []
    settings = OmegaConf.to_container(cfg.load, resolve=True)
    assert isinstance(settings, dict)
    record = {
        "settings": {**settings, "cpus": available_cpus()},
        "runs": runs,
        "sweeps": sweeps,
        "summary": summarise(runs, sweeps),
    }
    (out / "threads.json").write_text(json.dumps(record, indent=1))
    text = threads_tables(record)
    (out / "threads.md").write_text(text + "\n")
    print(text)
    return record
