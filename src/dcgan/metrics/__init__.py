"""Scores of generated images: FID and KID (distance.py) in pluggable feature spaces
(features.py: Inception-v3, a classifier of the built-in digits). Plain PyTorch and torchmetrics;
callbacks/quality.py computes them during training. A new metric or feature space is a new file
here."""
