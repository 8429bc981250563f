"""Data: the datasets as uint8 image arrays or folders, the STL-10 reader, batched augmentation."""
from .augment import eval_transform, random_resized_crop
from .datasets import ImageArrayDataset, build_dataset, collate_batch
from .stl10 import read_stl10, write_stl10

__all__ = ["ImageArrayDataset", "build_dataset", "collate_batch", "eval_transform", "random_resized_crop",
           "read_stl10", "write_stl10"]
