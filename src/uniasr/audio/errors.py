"""The error type of bad audio input (its own module so that every reader of audio can raise it)."""


class AudioError(ValueError):
    """Bad audio input; the message names the input and the problem."""
