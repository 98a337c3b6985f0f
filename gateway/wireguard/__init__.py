"""The WireGuard endpoint: keys, peer configurations, and the interface itself."""
