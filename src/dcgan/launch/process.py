"""What every process that runs a training job sets up before Hydra composes its config: the
resolvers the config's names use and the console's filters. train.py calls prepare() as it is
imported; a job that submitit starts from a pickle (launch/submitit.py) calls it too, since
train.py's module code never runs there."""

from omegaconf import OmegaConf

from dcgan.callbacks import console
from dcgan.launch import job, slurm, sweep, torchrun


def prepare() -> None:
    OmegaConf.register_new_resolver("job_name", sweep.job_name, replace=True)  # a sweep's job directories
    # names run and sweep directories; cached in the config, so a job that submitit runs from the
    # pickled config (a process of its own) reads the sweep's time, not its own
    OmegaConf.register_new_resolver("launch_time", torchrun.launch_time, replace=True, use_cache=True)
    OmegaConf.register_new_resolver("run_name", job.run_name, replace=True, use_cache=True)
    OmegaConf.register_new_resolver("rank_suffix", job.rank_suffix, replace=True)  # the ranks' logs
    OmegaConf.register_new_resolver("on_first_rank", job.on_first_rank, replace=True)  # .hydra/ from rank 0 only
    OmegaConf.register_new_resolver("slurm_gpus", slurm.gpus, replace=True)  # no gres request on a CPU
    OmegaConf.register_new_resolver("slurm_cpus", slurm.cpus, replace=True)
    console.quiet_third_parties()
    console.our_warnings_in_one_line()
