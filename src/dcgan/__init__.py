"""DCGAN as a PyTorch Lightning + Hydra research template.

Each subpackage is one concern, mirrored by the config group of the same name under conf/:

    data/       the data sources (a LightningDataModule each) and how images are found, decoded,
                cached and ordered                                             conf/data/
    model/      the GAN system (the LightningModule) with what it calls: losses, regularizers,
                augmentation, sampling; model/networks/ holds G and D as plain nn.Modules
                                                        conf/model/ (generator/, discriminator/)
    metrics/    what scores generated images (FID, KID) and the feature spaces they are computed in
    callbacks/  what a run writes and shows: grids, checkpoints, figures, metrics, hyperparameters,
                the bridge to each logger library, the console lines    conf/callbacks/, conf/logger/
    launch/     how runs start and spread: torchrun, SLURM, DDP over G and D, Hydra sweeps
                                                                      conf/hydra/, conf/trainer/

Below them, what all share: errors.py (the one user-facing exception), config.py (the entry
scripts' config checks), files.py (atomic writes), streams.py (seeds of the random streams).
Imports run downwards only: callbacks and launch use model, metrics and data; model never
imports data, and nothing imports an entry script.
"""
