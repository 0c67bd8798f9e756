"""The data: one source per kind of storage (source.py: N records read by index; folder.py: any
image folder; digits.py: the built-in digits; memory.py: a tensor), each with its DataModule,
all yielding the same batches through module.py: decoding (images.py), class labels
(classes.py), the decoded cache on the device, in host memory or on disk (cache.py), and an order
that a resumed run repeats (sampler.py). A new source is a new file here and one in conf/data/."""
