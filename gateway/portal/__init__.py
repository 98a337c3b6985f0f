"""The login portal under /.gateway/: log in, log out, the account page, single sign-on.

``routes.router`` assembles the parts: ``login`` (password, second factor, JSON login),
``logout``, ``account``, ``oidc``; ``peer_link`` has its own router. ``pages`` renders,
``guesses`` is the one gate every guess of a secret passes, ``fresh_proof`` guards
sensitive changes. The use cases behind them live in ``gateway.services.login`` and
``gateway.services.oidc_accounts``.
"""
