"""Server templates: what an operator lets tenants sell on its Pterodactyl panel, and within which bounds."""
