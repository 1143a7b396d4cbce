"""The 查询密码: drawn here, shown to the caller once, and kept only as a keyed hash.

The hashing itself lives in projections.case_secrets (`QueryPasswords`), because the
anonymous progress lookup (the read side) verifies with it and projections may not
import backend. One implementation, so the two sides can never disagree on the format
'hmac-sha256$kid$salt_b64$digest_b64': HMAC-SHA256 under a key derived from the data
key `kid` of CITYPASS_DATA_KEYS. bootstrap builds one from the settings for both sides.
"""

from __future__ import annotations

import secrets

from projections.case_secrets import QueryPasswords

__all__ = ["QueryPasswords", "new_query_password", "receipt_number_for"]


def new_query_password() -> str:
    """Six random digits, as printed on a 受理回执."""
    return f"{secrets.randbelow(10**6):06d}"


def receipt_number_for(case_number: str) -> str:
    """受理回执号: 'SL' (受理) and the 办件编号, so it is unique exactly when case numbers are."""
    return f"SL{case_number}"
