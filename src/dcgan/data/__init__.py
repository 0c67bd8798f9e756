"""The data: one LightningDataModule per source (folder.py: any image folder; digits.py: the
built-in digits), all yielding the same batches, and how they get there: finding and decoding
images (images.py), class labels from the layout (classes.py), the decoded cache (cache.py), and
an order that a resumed run repeats (sampler.py). A new source is a new file here and one in
conf/data/."""
