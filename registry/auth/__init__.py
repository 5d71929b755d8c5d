"""Who is calling and what may they do: the Authorizer protocol and its implementations."""

from registry.auth.base import Access, Authorizer, Identity

__all__ = ["Access", "Authorizer", "Identity"]
