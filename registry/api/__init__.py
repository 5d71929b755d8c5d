"""Thin HTTP handlers: parse the request, call the service, shape the response."""
