"""Storage reads and writes, one module per concern; callers never branch on the backend."""
