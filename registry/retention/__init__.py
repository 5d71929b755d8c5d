"""Tag retention (docs/retention.md): which tags of a namespace's repositories its
`retention` rules no longer keep (decision.py, a pure function), the plan over the whole
catalog and its conditional application (planner.py), pull-time records (pulls.py) and the
`registry retention plan|run` commands (command.py)."""
