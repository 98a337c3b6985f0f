"""HTTPS for every listener: certificates and the TLS settings clients get."""
