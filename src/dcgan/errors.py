"""The one exception type for mistakes a user can fix; entry scripts print it as one line."""


class UsageError(ValueError):
    """Bad input (config value, path, checkpoint). Raised from a constructor, the message starts
    with the parameter's name, so the entry script can prefix the config group: 'data.' + msg."""


class TrainingDiverged(UsageError):
    """A loss or a weight became inf or NaN; checkpoints written before it are kept as they were."""
