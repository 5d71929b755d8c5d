"""Who is calling and what may they do: the Authorizer protocol and its implementations."""

from registry.auth.authorizer import Authorizer, Identity, Scope

__all__ = ["Authorizer", "Identity", "Scope"]
