"""Side-by-side benchmarks of our registry against CNCF Distribution (`python -m bench.run`).

Imported as `bench.*` from the project root, next to `registry` and `testkit`.
"""
