"""Money as integer minor units with an ISO 4217 currency: never floats."""
