"""Pre-processing job: validate an input CSV against its schema, write clean Parquet or quarantine it."""
