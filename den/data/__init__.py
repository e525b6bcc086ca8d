"""Datasets (sources) and the task streams cut from them."""

from den.data.sources import RawDataset, load_dataset
from den.data.streams.base import Split, Stream, Task, build_stream

__all__ = ["RawDataset", "Split", "Stream", "Task", "build_stream", "load_dataset"]
