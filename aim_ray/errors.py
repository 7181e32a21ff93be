"""The project's error base: every error aim-ray raises on purpose for a user to read."""


class AimRayError(Exception):
    """A problem the user can fix, with a message that says how; never shown as a traceback."""
