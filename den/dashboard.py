"""``python -m den.dashboard --entity E --project P [--group G]``: the W&B workspace that
compares a sweep's methods over seeds (see :mod:`den.loggers.dashboard`).

Runs logged with ``logger=wandb`` carry the keys it plots; it needs an API key
(``WANDB_API_KEY`` or ``wandb login``) to save the workspace. ``--dry-run`` builds it
without W&B and prints its sections and metric keys.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from den.loggers.dashboard import panel_keys, workspace
from den.utils.wandb_key import has_wandb_key


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m den.dashboard",
        description="Save a W&B workspace that compares the methods of a project or sweep.",
        epilog="Exit status: 0 saved (or printed with --dry-run), 2 no API key or W&B refused.",
    )
    parser.add_argument("--entity", required=True, help="the W&B entity (user or team)")
    parser.add_argument("--project", required=True, help="the W&B project (logger.project)")
    parser.add_argument("--group", help="only this group: a sweep (<experiment>-<sweep dir>)")
    parser.add_argument("--name", help="the workspace's name (default: from the group)")
    parser.add_argument("--tasks", type=int, default=10, help="tasks of the stream (bars)")
    parser.add_argument("--dry-run", action="store_true", help="print the view, save nothing")
    args = parser.parse_args(argv)
    view = workspace(args.entity, args.project, args.group, args.name, args.tasks)
    if args.dry_run:
        print(f"workspace {view.name!r} of {args.entity}/{args.project}, runs grouped by method")
        for section, keys in panel_keys(view).items():
            print(f"  {section}: {', '.join(keys)}")
        return 0
    if not has_wandb_key():
        print(
            "Error: saving a workspace needs a W&B API key. Fix: set WANDB_API_KEY or run "
            "`wandb login`, or add --dry-run to see the view without saving it.",
            file=sys.stderr,
        )
        return 2
    try:
        view.save()
    except Exception as err:  # noqa: BLE001 - the network, permissions, an unknown project
        print(f"Error: W&B refused the workspace ({err}). Fix: check --entity and --project "
              "(a project you can write to) and the network.", file=sys.stderr)  # fmt: skip
        return 2
    print(f"saved: {view.url}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
