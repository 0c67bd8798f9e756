"""The template's submitit launchers (hydra/launcher=slurm and hydra/launcher=local, the slurm
extra), defined in the one package Hydra takes launchers from; what they add to Hydra's submitit
launchers is dcgan.launch.submitit.TrainJobs."""

try:
    from hydra_plugins.hydra_submitit_launcher import submitit_launcher
except ImportError:  # without the slurm extra: no launcher here, and Hydra's plugin scan stays quiet
    pass
else:
    from dcgan.launch.submitit import TrainJobs

    class LocalLauncher(TrainJobs, submitit_launcher.LocalLauncher):
        """Each job in a process of its own on this machine, as SLURM would run it."""

    class SlurmLauncher(TrainJobs, submitit_launcher.SlurmLauncher):
        """Each job a SLURM job (an array job for a sweep)."""
