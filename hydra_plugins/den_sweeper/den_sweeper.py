"""``hydra/sweeper=den_grid`` (the default of ``-m``, set by ``hparams_search=grid``): Hydra's
basic sweeper, every combination of the comma lists, except that a failed job does not end
the sweep. Every job runs; a failed one has ``failed.json`` in its folder; the end of the
sweep lists the failed jobs with their errors and exits with status 1
(:mod:`den.run.sweep`). Hydra's basic sweeper stops at the first failed job of a batch.
"""

# No `from __future__ import annotations`: Hydra's plugin scan runs this module before it is
# in sys.modules, where dataclasses would look string annotations up.
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper, BasicSweeperConf
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

log = logging.getLogger(__name__)


@dataclass
class DenGridSweeperConf(BasicSweeperConf):
    _target_: str = "hydra_plugins.den_sweeper.den_sweeper.DenGridSweeper"


ConfigStore.instance().store(
    group="hydra/sweeper", name="den_grid", node=DenGridSweeperConf, provider="den"
)


class DenGridSweeper(BasicSweeper):
    """BasicSweeper whose sweep runs every batch, collects the failed jobs and lists them."""

    def sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.launcher is not None
        assert self.hydra_context is not None
        from den.run.sweep import end_of_sweep, failures_of

        params_conf = self._parse_config()
        params_conf.extend(arguments)
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        self.overrides = self.split_arguments(
            parser.parse_overrides(params_conf), self.max_batch_size
        )
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        from den.utils.files import write_atomic

        write_atomic(sweep_dir / "multirun.yaml", OmegaConf.to_yaml(self.config))
        returns, failures, jobs = [], [], []
        while not self.is_done():
            batch = self.get_job_batch()
            tic = time.perf_counter()
            self.validate_batch_is_legal(batch)
            log.debug("validated %d jobs in %.2f s", len(batch), time.perf_counter() - tic)
            results = self.launcher.launch(batch, initial_job_idx=len(jobs))
            failures += failures_of(results)
            jobs += [list(job) for job in batch]
            returns.append(results)
        end_of_sweep(failures, jobs)  # lists the failed jobs and exits 1
        return returns
