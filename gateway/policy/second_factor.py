"""Who must have a second factor before a password login completes.

``[auth] require_second_factor`` names who: ``"none"`` (nobody), ``"admins"`` (accounts
with the admin role) or ``"all"`` (every account). An account that must and has neither
an authenticator app (TOTP) nor a passkey is sent to set one up right after its password
was right, and gets no session - so it reaches nothing, the CEMM's ports included - until
it has one. Sign-ins through the OIDC provider are not subject to it: the provider's own
second factor applies there. Pure: the portal asks with the account's role and whether it
has a second factor.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["Requirement", "must_enrol"]

Requirement = Literal["none", "admins", "all"]


def must_enrol(requirement: Requirement, *, role: str, has_second_factor: bool) -> bool:
    """Whether a password login of this account must first set up a second factor."""
    if has_second_factor or requirement == "none":
        return False
    return requirement == "all" or role == "admin"
