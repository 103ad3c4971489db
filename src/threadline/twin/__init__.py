"""The offline twin: the same template, state machine, handlers and job commands on one machine."""
