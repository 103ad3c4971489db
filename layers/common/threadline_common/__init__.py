"""Code shared by threadline's Lambda functions and its CLI.

Deployed as the `CommonLayer` Lambda layer (importable as `threadline_common`).
Nothing here reads the environment at import time, so the CLI and the tests can
import every module without a Lambda around them.
"""
