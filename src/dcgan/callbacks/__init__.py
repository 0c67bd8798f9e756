"""What a run writes and shows, each a Lightning callback named in conf/callbacks/: fixed-noise and
real grids (grids.py), the progress bar (progress.py), FID/KID (quality.py), checkpoints
(checkpoints.py), the end-of-run figures (figures.py, from the run's events: events.py),
hyperparameters (hparams.py); and what they share: images and parameters to each logger library
of conf/logger/ (sinks.py), and the lines train.py prints (console.py)."""
