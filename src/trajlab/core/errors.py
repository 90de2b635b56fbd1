"""The one exception type for user mistakes: the CLI prints its message on one line and exits non-zero."""


class TrajlabError(Exception):
    """A problem with the user's input (file, id, shape, option), reported without a traceback."""
