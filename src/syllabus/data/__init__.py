"""Dataset dirs (shards + manifest) and the raw corpus ingest."""

from syllabus.data.dataset import Dataset, DatasetWriter, ShardInfo, record_id, write_dataset

__all__ = ["Dataset", "DatasetWriter", "ShardInfo", "record_id", "write_dataset"]
