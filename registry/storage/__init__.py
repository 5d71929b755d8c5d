"""Storage: a small protocol of bytes at keys, its drivers, and the key layout."""
