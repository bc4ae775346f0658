"""Exceptions that mean "the user's input is wrong" (exit code 2 on the command line)."""


class InputError(ValueError):
    """Bad input: the message names the field, the value and what is allowed."""
