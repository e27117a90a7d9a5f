"""Keyed pseudonymisation of the council's person reference.

Downstream of ingest a resident is known only by `resident_key`, an HMAC-SHA256 of the
person reference under a secret key that only ingest holds. Without the key the mapping
cannot be rebuilt by hashing a list of known references.
"""

import hashlib
import hmac


def resident_key(person_ref: str, secret: str) -> str:
    """Return the pseudonymous key for a person reference (stable for one secret)."""
    normalised = person_ref.strip().upper()
    digest = hmac.new(secret.encode(), normalised.encode(), hashlib.sha256).hexdigest()
    return f"r_{digest[:32]}"


def age_band(age_years: int) -> str:
    """Group an age into the bands used for fairness monitoring and reporting."""
    if age_years < 18:
        return "0-17"
    for upper, band in ((24, "18-24"), (44, "25-44"), (64, "45-64"), (74, "65-74"), (84, "75-84")):
        if age_years <= upper:
            return band
    return "85+"
