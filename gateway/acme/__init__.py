"""Certificates from an ACME authority: the account, orders and their challenges, the files
in the data directory, and what the dashboard shows about them."""
