"""Helpers shared by the tests and the benchmarks: ports, server processes, process-tree
figures, SeaweedFS, registry processes on either backend, and small OCI client calls.

Imported as `testkit.*` from the project root (pytest's rootdir, `python -m bench.run`).
"""
