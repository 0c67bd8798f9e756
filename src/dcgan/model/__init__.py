"""The GAN system: the LightningModule that owns G and D and runs the seed's D-then-G step
(gan.py), and the objects it calls: losses (losses.py), gradient penalties (regularizers.py),
DiffAugment (augment.py) and ADA (ada.py, ada_pipeline.py), sampling from G (sampling.py), G's
weight average (ema.py), the learning-rate decay (schedule.py), how the step runs on the hardware
(runtime.py), and the option checks (options.py). The networks themselves are in networks/.
Mirrored by conf/model/."""
