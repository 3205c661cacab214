"""Independent, reproducible random streams derived from one seed and a name."""

from __future__ import annotations

import hashlib
import random

import numpy as np


def derive_seed(seed: int, *names: str) -> int:
    """A 64-bit seed for the stream ``names`` of run ``seed``; stable across Python versions."""
    text = "/".join([str(seed), *names]).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def py_rng(seed: int, *names: str) -> random.Random:
    """A ``random.Random`` for one stream; streams never share state."""
    return random.Random(derive_seed(seed, *names))


def np_rng(seed: int, *names: str) -> np.random.Generator:
    """A numpy PCG64 generator for one stream."""
    return np.random.Generator(np.random.PCG64(derive_seed(seed, *names)))
