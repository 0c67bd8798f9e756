"""Scores of generated images in pluggable feature spaces (features.py: Inception-v3, a classifier
of the built-in digits; each image through it once): FID, KID, the Inception Score
(inception_score.py), precision/recall and density/coverage (manifold.py), intra-class FID, all
computed by scores.py for the training callback (callbacks/quality.py) and evaluate.py, by
torch-fidelity's own code where it has one (its Inception-v3 and metric functions). A new metric or
feature space is a new file here."""
