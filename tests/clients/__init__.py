"""Round trips through the registry with real container clients."""
