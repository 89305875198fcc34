"""Errors raised for bad input data."""


class DataError(ValueError):
    """Input data is malformed; the message names the file, frame, atom, element or level."""
