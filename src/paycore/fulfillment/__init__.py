"""What paying does: stock, entitlements, provisioning — one fulfillment row each."""
