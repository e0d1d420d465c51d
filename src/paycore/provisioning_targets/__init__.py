"""Where a tenant's HTTP provisioning calls go, each with its own signing secret (sealed at rest)."""
