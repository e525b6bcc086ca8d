"""Datasets a stream can be cut from, one module per family; each registers its loaders in
:data:`den.config.registry.DATASETS` (``stream.dataset``)."""
