"""How runs start and spread: which process of which job this is and where a restarted job goes
on from (job.py; torchrun.py, slurm.py for each scheduler), DDP over G and D separately (ddp.py,
the trainer's "ddp" strategies), Hydra sweeps (sweep.py: job names and the summary table) and
their submitit launchers (submitit.py; conf/hydra/), and what every such process sets up first
(process.py)."""
