"""Every input reader in one place: CSV files, JSON request bodies, Parquet files and Spark's Arrow batches -> an
`InputTable` for validation."""
