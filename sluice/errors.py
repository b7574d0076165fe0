"""Domain errors whose *class names* are Temporal's non-retryable error types.

Temporal matches ``RetryPolicy.non_retryable_error_types`` against the class name
of the exception an activity raises, so these names are part of the contract
between activities and the retry policies in :mod:`sluice.temporal.policies`.
"""

from __future__ import annotations


class SluiceError(Exception):
    """Base class for every error Sluice raises on purpose."""


class ConfigurationError(SluiceError):
    """A setting, connector configuration or request is invalid: retrying cannot help."""


class ConnectorConfigError(ConfigurationError):
    """A connector's configuration is invalid (unknown source, missing path, bad URL...)."""


class BadCredentialsError(SluiceError):
    """The source refused the credential: the cc-pair is marked invalid, retries stop."""


class InvalidTenantError(ConfigurationError):
    """A tenant ID does not match ``^[a-z0-9_]{1,63}$``; rejected before any SQL."""


class NotFoundError(SluiceError):
    """A connector, credential or cc-pair that was asked for does not exist."""


class StagedBatchGone(SluiceError):
    """A staged batch was deleted (its attempt ended, or the connector was deleted)."""


class AttemptClosed(SluiceError):
    """The attempt was closed (its run vanished and a new one took over): stop staging."""


class CcPairDeleted(SluiceError):
    """The cc-pair is being deleted (or is gone): its connector workflow must stop."""


class SwapInProgress(SluiceError):
    """A model swap is already building a new index generation for this tenant."""


class DocumentParseError(ConfigurationError):
    """A collection document cannot be parsed (unsupported type, not text, empty)."""


class CollectionDeleted(SluiceError):
    """The collection is deleted (or being collected): nothing new may be indexed in it."""


NON_RETRYABLE_ERROR_TYPES: list[str] = [
    ConfigurationError.__name__,
    ConnectorConfigError.__name__,
    BadCredentialsError.__name__,
    InvalidTenantError.__name__,
    NotFoundError.__name__,
    StagedBatchGone.__name__,
    AttemptClosed.__name__,
    CcPairDeleted.__name__,
    SwapInProgress.__name__,
    DocumentParseError.__name__,
    CollectionDeleted.__name__,
]
