"""Operating paycore: health, readiness, metrics (and later the ops summary)."""
