"""Certificate authorities: local (embedded default), ACME (RFC 8555) and manual."""
