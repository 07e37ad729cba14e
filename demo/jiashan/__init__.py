"""The Jiashan (嘉善县) demo dataset generator: ``build_dataset(seed)``."""

from demo.jiashan.dataset import JiashanDataset, build_dataset

__all__ = ["JiashanDataset", "build_dataset"]
