"""The domain exceptions. The CLI and the web app turn them into one line for a person."""


class RagError(Exception):
    """Base class: every message is one line that names the offending value."""


class DocumentError(RagError):
    """A documents folder or file that cannot be used (missing, empty, undecodable)."""


class IndexStateError(RagError):
    """An index directory that is missing, corrupted, or does not match the settings asked for."""


class InputError(RagError):
    """A question or setting a person typed (or an API caller sent) that cannot be used."""


class UnreadableFile(DocumentError):
    """A file that is no document (binary, undecodable, corrupt, encrypted, a scan, too big, an unknown
    type): `str()` is "path: reason", `reason` alone is what a manifest records and a warning shows."""

    def __init__(self, path: object, reason: str, fingerprint: dict | None = None):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason
        self.fingerprint = fingerprint  # the file's, when a build knows it (it records the skip with it)
