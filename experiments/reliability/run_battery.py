"""Run the fault battery of tests/fault_battery.py and write the table of messages.

    python experiments/reliability/run_battery.py      # from the repository root, ~6 min

Writes experiments/reliability/battery.md: per case the item of issue 19 it checks (0 =
beyond that list), the kind of fault, whether its guarantee held, and the message the user
gets (den's one-paragraph error, Hydra's error, or what the run did).
"""

from __future__ import annotations

import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import torch  # noqa: E402
from fault_battery import CASES, SkipCase, make_env  # noqa: E402


def main() -> int:
    torch.set_num_threads(1)
    rows, failed = [], 0
    with tempfile.TemporaryDirectory(prefix="den-battery-") as tmp:
        env = make_env(Path(tmp))
        for case in CASES:
            t0 = time.perf_counter()
            try:
                message = case.run(env)
                missing = [t for t in case.expect if t not in message]
                outcome = "held" if not missing and "Traceback" not in message else "FAILED"
            except SkipCase as reason:
                message, outcome = f"skipped: {reason}", "skipped"
            except Exception as err:  # noqa: BLE001 - the table reports every failure
                message = f"{type(err).__name__}: {err}"
                outcome = "FAILED"
                traceback.print_exc()
            failed += outcome == "FAILED"
            seconds = time.perf_counter() - t0
            print(f"{outcome:7s} {seconds:5.1f}s  {case.id}", flush=True)
            rows.append((case.item or "-", case.kind, case.id, outcome, message, seconds))
    lines = [
        "# Fault battery: every bad input and fault, and the message it gets",
        "",
        f"{len(rows)} cases, {sum(r[3] == 'held' for r in rows)} held, {failed} failed, "
        f"{sum(r[3] == 'skipped' for r in rows)} skipped. Written by "
        "`python experiments/reliability/run_battery.py` (the cases: tests/fault_battery.py; "
        "`python -m pytest tests/test_fault_battery.py` runs the same cases as tests).",
        "",
        "*held*: the case's guarantee held (a message naming the key or file, no traceback, "
        "no training with the bad value, no lost or duplicated data, no temporary file left). "
        "Item: the number in issue 19's list (- = beyond it).",
        "",
        "| item | kind | case | outcome | message the user gets |",
        "|---|---|---|---|---|",
    ]
    for item, kind, cid, outcome, message, _ in rows:
        text = " ".join(message.split()).replace("|", "\\|")
        lines.append(f"| {item} | {kind} | `{cid}` | {outcome} | {text} |")
    (HERE / "battery.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {HERE / 'battery.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
