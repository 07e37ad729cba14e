"""What can be wrong with an upload, each with the HTTP status the API answers it with."""

from __future__ import annotations


class UploadError(ValueError):
    """An upload that is refused; ``status`` is the answer's HTTP status, the message says why."""

    status = 400


class TooLarge(UploadError):
    """Over the configured size (or pixel) limit; the message names the limit."""

    status = 413

    def __init__(self, limit: int, what: str = "bytes", setting: str = "GRIDMAP_ATTACHMENT_MAX_MB") -> None:
        super().__init__(f"the upload is over the limit of {limit:,} {what} ({setting})")
        self.limit = limit


class Truncated(UploadError):
    """The body ended early, or the file inside it is cut short."""

    status = 400


class Unsupported(UploadError):
    """Not a JPEG, PNG, HEIC/HEIF or PDF by its content; ``detected`` names what it is."""

    status = 415

    def __init__(self, detected: str, accepted: tuple[str, ...]) -> None:
        super().__init__(
            f"the content is {detected}, not an accepted type ({', '.join(accepted)}); the type is read "
            "from the content, not the file name"
        )
        self.detected = detected
