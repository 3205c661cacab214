"""Live data: positions from the broker and alert changes from PostgreSQL, fanned out to clients."""
