"""The platform operator's side: tenants, plans and subscriptions across the deployment."""
