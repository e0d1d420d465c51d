"""A tenant's keys at its payment providers, sealed at rest (`PUT /v1/providers/{provider}`)."""
