"""Why a partner-registry command was refused; a refused command records nothing."""

from __future__ import annotations


class PartnerError(Exception):
    """Base of every refusal in the partner registry: the API maps each subclass to a stable problem type."""


class InvalidPartnerError(PartnerError):
    """A region, name, base URL or accepted item that is not well formed."""


class InvalidPartnerKeyError(PartnerError):
    """A key id or public key that is not well formed (a public key is base64 of 32 raw bytes)."""


class PartnerKeyConflictError(PartnerError):
    """A key id already stands for another key, or the key is already known under another id."""


class LastPartnerKeyError(PartnerError):
    """Retiring this key would leave the partner with none, and then no message of its could be checked."""


class UnknownPartnerError(PartnerError):
    """No partner of that region is registered."""


class UnknownPartnerKeyError(PartnerError):
    """The partner never had a key of that id."""


class NotPartnerAdministratorError(PartnerError):
    """Only the 政务服务管理 administration configures partner cities."""
