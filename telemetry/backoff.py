"""Jittered exponential backoff for reconnect and retry loops (pure)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    """Full-jitter exponential backoff: delay n is uniform in [base, min(cap, base * 2**n)]."""

    base: float = 0.2
    cap: float = 15.0
    attempts: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next_delay(self) -> float:
        """The delay before the next attempt; grows with each failure."""
        ceiling = min(self.cap, self.base * (2 ** min(self.attempts, 30)))
        self.attempts += 1
        return self.rng.uniform(self.base, max(self.base, ceiling))

    def reset(self) -> None:
        """Forget past failures after a success."""
        self.attempts = 0
