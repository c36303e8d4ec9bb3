"""The domain exceptions. The CLI and the web app turn them into one line for a person."""


class RagError(Exception):
    """Base class: every message is one line that names the offending value."""


class DocumentError(RagError):
    """A documents folder or file that cannot be used (missing, empty, undecodable)."""


class IndexStateError(RagError):
    """An index directory that is missing, corrupted, or does not match the settings asked for."""


class InputError(RagError):
    """A question or setting a person typed (or an API caller sent) that cannot be used."""
