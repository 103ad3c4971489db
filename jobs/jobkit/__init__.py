"""Code the threadline Batch jobs share: S3 URIs, AWS clients, exit codes, failure reporting."""
