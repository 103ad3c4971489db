"""The one error a deploy reports to its user."""


class DeployError(RuntimeError):
    """A deploy step cannot go on; the message says why and what to do."""
