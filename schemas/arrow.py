"""Arrow schemas for the Parquet files of a dataset version."""

import pyarrow as pa

DOCUMENT = pa.schema(
    [
        ("id", pa.string()),
        ("kind", pa.string()),
        ("text", pa.large_string()),
        ("source", pa.string()),
        ("repo", pa.string()),
        ("path", pa.string()),
        ("lang", pa.string()),
        ("license", pa.string()),
        ("stars", pa.int64()),
        ("star_bucket", pa.int8()),
        ("tags", pa.list_(pa.string())),
        ("meta", pa.list_(pa.list_(pa.string()))),
        ("ext", pa.string()),
        ("origin", pa.string()),
    ]
)

REJECTED = pa.schema(
    [
        ("id", pa.string()),
        ("stage", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("source", pa.string()),
        ("repo", pa.string()),
        ("path", pa.string()),
        ("excerpt", pa.string()),
        ("size", pa.int64()),
        ("lang", pa.string()),
    ]
)

SNAPSHOT = pa.schema(
    [
        ("source", pa.string()),
        ("repo", pa.string()),
        ("revision", pa.string()),
        ("license", pa.string()),
        ("stars", pa.int64()),
        ("files", pa.int64()),
    ]
)
