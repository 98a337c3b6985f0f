"""Authentication: passwords, second factor, tokens, brute-force policy, OIDC."""
