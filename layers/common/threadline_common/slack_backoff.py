"""The setting that scales the Slack function's backoff between webhook retries (`slack.default_policy`).

It stands apart from `slack.py` so that the offline twin, which hands it to every
function it runs, names it without importing the delivery code and Powertools.
"""

BACKOFF_SCALE_ENV = "THREADLINE_SLACK_BACKOFF_SCALE"
