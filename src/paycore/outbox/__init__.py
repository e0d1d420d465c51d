"""Side effects after a commit: written in the same transaction, delivered by the worker."""
