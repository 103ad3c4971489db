"""threadline: CSV -> Step Functions + Batch pipelines on AWS, and their offline twin."""
