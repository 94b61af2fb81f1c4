"""Storage: Delta tables with version pinning, and the landing zone."""
