"""Generators and discriminators: plain nn.Modules, nothing here knows about Lightning or Hydra.
dcgan.py is the tutorial's pair; parts.py builds any network from its spec, checks the contract
every G and D keeps, and adds spectral norm. A new network is a new file here and one in
conf/model/generator/ or conf/model/discriminator/."""
