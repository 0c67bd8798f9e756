"""How runs start and spread: under torchrun (torchrun.py: one run directory, restarts), on
several devices with DDP over G and D separately (ddp.py, the trainer's "ddp" strategies), and as
Hydra sweeps (sweep.py: job names and the summary table, conf/hydra/)."""
