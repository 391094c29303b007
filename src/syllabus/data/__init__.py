"""Dataset dirs (shards + manifest), their files and statistics."""

from syllabus.data.dataset import Dataset, DatasetWriter, ShardInfo, record_id, write_dataset

__all__ = ["Dataset", "DatasetWriter", "ShardInfo", "record_id", "write_dataset"]
