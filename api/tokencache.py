"""Token lookups with a short cache, so REST calls do not each hit the database."""

from __future__ import annotations

import time
from collections import OrderedDict

from psycopg_pool import AsyncConnectionPool

from api.auth import Principal, Role, plausible_token, token_digest
from telemetry.storage.tokens import active_token


class TokenCache:
    """digest -> Principal (or None for unknown) for ``ttl_s``; revocation takes at most that."""

    def __init__(self, ttl_s: float, max_entries: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: OrderedDict[bytes, tuple[float, Principal | None]] = OrderedDict()

    def forget(self) -> None:
        """Drop every cached answer (after a revocation through this process)."""
        self._entries.clear()

    async def resolve(self, pool: AsyncConnectionPool, token: str) -> Principal | None:
        """The principal holding ``token``, or None when it is unknown or revoked."""
        if not plausible_token(token):
            return None
        digest = token_digest(token)
        now = time.monotonic()
        hit = self._entries.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        async with pool.connection() as conn:
            row = await active_token(conn, digest)
        principal = (
            Principal(row.token_id, Role(row.role), frozenset(row.districts), row.label)
            if row is not None
            else None
        )
        if self.ttl_s > 0:
            self._entries[digest] = (now + self.ttl_s, principal)
            self._entries.move_to_end(digest)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return principal
