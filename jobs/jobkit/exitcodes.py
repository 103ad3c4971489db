"""Exit codes of every job, as fixed in docs/design.md."""

EX_OK = 0
EX_FAILURE = 1  # anything else; Batch may retry
EX_USAGE = 2  # bad command line
EX_DATAERR = 65  # input failed validation; never retried, the file is quarantined
