"""The GAN system: the LightningModule that owns G and D and runs the seed's D-then-G step
(gan.py), and the objects it calls: losses (losses.py), gradient penalties (regularizers.py),
DiffAugment (augment.py), sampling from G (sampling.py), and the option checks (options.py).
The networks themselves are in networks/. Mirrored by conf/model/."""
