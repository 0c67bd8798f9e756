"""Sweeps through submitit (the slurm extra): each job a SLURM job (hydra/launcher=slurm) or a
process of its own here (hydra/launcher=local), started from a pickle of Hydra's launcher.

TrainJobs is what the template's launchers (hydra_plugins/dcgan_submitit) add to Hydra's:
- in the job: what train.py sets up as it is imported (process.prepare), and the sweep's own
  command line as sys.argv, which the extra ranks Lightning starts re-run (ddp.HydraJobLauncher)
  and the job names read their swept keys from (sweep.job_name): a pickled job runs neither;
- while waiting: where each job's log is, and one line for a job that waits in the queue, with the
  reason squeue gives, instead of a silent wait;
- a job that ends without a result (cancelled, killed, out of time without a requeue) is a failed
  job with a row in the sweep's summary saying so, not an UncompletedJobError that ends the sweep.
"""

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf, open_dict

from dcgan.launch import process, slurm
from dcgan.launch.sweep import job_name

POLL_S = 3.0  # how often a waiting sweep looks at its jobs


class JobEnded(RuntimeError):
    """A job that ended without a result."""


class TrainJobs:
    _EXECUTOR: str
    params: dict[str, Any]

    @property
    def _kind(self) -> str:
        return "SLURM" if self._EXECUTOR == "slurm" else "local"

    def setup(self, **kwargs: Any) -> None:
        super().setup(**kwargs)
        self.argv = [os.path.abspath(sys.argv[0]), *sys.argv[1:]]  # the sweep's command line, pickled with self

    def __call__(self, *args: Any, **kwargs: Any) -> JobReturn:
        process.prepare()
        sys.argv = list(self.argv)
        return super().__call__(*args, **kwargs)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        import submitit

        params = dict(self.params)
        executor = submitit.AutoExecutor(folder=params.pop("submitit_folder"), cluster=self._EXECUTOR,
                                         **{f"{self._EXECUTOR}_max_num_timeout": params.pop("max_num_timeout")}
                                         if "max_num_timeout" in params else {})
        from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

        shared = OmegaConf.structured(BaseQueueConf).keys()  # submitit's names for every cluster; others take its prefix
        executor.update_parameters(**{k if k in shared else f"{self._EXECUTOR}_{k}": v for k, v in params.items()})
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        numbers = list(range(initial_job_idx, initial_job_idx + len(job_overrides)))
        overrides = [list(job) for job in job_overrides]
        jobs = executor.map_array(self, overrides, ["hydra.sweep.dir"] * len(numbers), numbers,
                                  [f"job_id_for_{num}" for num in numbers], [Singleton.get_state()] * len(numbers))
        names = [job_name(num, given, None) for num, given in zip(numbers, overrides)]
        for job, name in zip(jobs, names):
            print(f"dcgan: job {name} is {self._kind} job {job.job_id}; follow it with: tail -f {job.paths.stdout}",
                  flush=True)
        self._wait(jobs, names)
        return [self._result(job, num, given, sweep_dir) for job, num, given in zip(jobs, numbers, overrides)]

    def _wait(self, jobs: list, names: list[str]) -> None:
        """Until every job is done; says once per reason which jobs wait in the queue and why."""
        seen: dict[str, str] = {}  # job id: the reason it waited for at the last look
        said: dict[str, str] = {}
        while not all(job.done() for job in jobs):
            if self._EXECUTOR == "slurm":
                reasons = slurm.pending_reasons([job.job_id for job in jobs])
                for job, name in zip(jobs, names):
                    reason = reasons.get(job.job_id)
                    if reason and seen.get(job.job_id) == reason and said.get(job.job_id) != reason:
                        print(f"dcgan: job {name} (SLURM job {job.job_id}) is waiting in the queue: {reason}; "
                              f"see it with: squeue -j {job.job_id}; give it up with: scancel {job.job_id}",
                              flush=True)
                        said[job.job_id] = reason
                    seen[job.job_id] = reason or ""
            time.sleep(POLL_S)

    def _result(self, job, num: int, overrides: list[str], sweep_dir: Path) -> JobReturn:
        from submitit.core.utils import FailedJobError, UncompletedJobError

        try:
            return job.results()[0]  # rank 0's, when the job has several tasks
        except (UncompletedJobError, FailedJobError) as error:
            why = " ".join(str(error).split())[:300] if isinstance(error, FailedJobError) else "it left no result"
            state = (job.state.split() or ["UNKNOWN"])[0]  # CANCELLED, not "CANCELLED by 0"
            ended = JobEnded(f"{self._kind} job {job.job_id} ended {state} before it finished ({why}); "
                             f"its log: {job.paths.stdout}")
        # the summary's row: the job's directory as the job would have named it, with its overrides
        config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with open_dict(config.hydra):
            config.hydra.job.num = num
            output_dir = sweep_dir / str(OmegaConf.select(config, "hydra.sweep.subdir"))
            config.hydra.runtime.output_dir = str(output_dir)
        (output_dir / ".hydra").mkdir(parents=True, exist_ok=True)
        if not (output_dir / ".hydra" / "overrides.yaml").exists():
            OmegaConf.save(OmegaConf.create(overrides), output_dir / ".hydra" / "overrides.yaml")
        returned = JobReturn(overrides=overrides, cfg=config, hydra_cfg=config, working_dir=str(output_dir),
                             status=JobStatus.FAILED, _return_value=ended)
        self.hydra_context.callbacks.on_job_end(config=config, job_return=returned)
        return returned
