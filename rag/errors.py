"""The error hierarchy. The API maps these to HTTP statuses in one handler, the CLI to
one-line messages in one place; nothing else needs to know about either."""

from __future__ import annotations


class RagError(Exception):
    """Base of every error the service reports to a user."""

    status_code = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInputError(RagError):
    """The request or file cannot be used as given (empty text, bad id, empty query)."""

    status_code = 422


class UnsupportedContentError(RagError):
    """A file that is not UTF-8 text (binary, another encoding)."""

    status_code = 415


class DocumentTooLargeError(RagError):
    """An article over the configured size limit."""

    status_code = 413


class AccessDeniedError(RagError):
    """A server refused this client's API key (or its lack of one)."""

    status_code = 401


class NotFoundError(RagError):
    """A document id, file or folder that does not exist."""

    status_code = 404


class TooManyQuestionsError(RagError):
    """A caller over its questions-per-minute quota."""

    status_code = 429


class ServiceUnavailableError(RagError):
    """An outside system the request needs is down: the store or the LLM."""

    status_code = 503


class StoreUnavailableError(ServiceUnavailableError):
    """Chroma cannot be reached."""


class LLMUnavailableError(ServiceUnavailableError):
    """The LLM endpoint is unreachable, timed out or refused the request."""


class ModelFileError(RagError):
    """The embedded model file is missing or does not match its checksum."""
