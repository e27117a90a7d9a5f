"""Asks ingest's identity vault whether a postcode belongs to a resident. Outreach never
holds postcodes: it passes the resident's answer on and keeps only the yes or no."""

from __future__ import annotations

import httpx


class VaultUnavailable(RuntimeError):
    pass


class PostcodeChecker:
    def __init__(self, ingest_url: str, service_token: str, timeout_s: float = 5.0) -> None:
        self.url = f"{ingest_url.rstrip('/')}/internal/v1/vault/verify-postcode"
        self.headers = {"Authorization": f"Bearer {service_token}"}
        self.timeout_s = timeout_s

    async def matches(self, resident_key: str, postcode: str) -> bool:
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.post(
                    self.url,
                    json={"resident_key": resident_key, "postcode": postcode},
                    headers=self.headers,
                )
        except httpx.HTTPError as error:
            raise VaultUnavailable(
                f"ingest could not be reached: {type(error).__name__}"
            ) from error
        if response.status_code != 200:
            raise VaultUnavailable(f"ingest answered {response.status_code}")
        return response.json().get("match") is True
