"""One module per ``venvdeb`` command, peers: none imports another (import-linter
keeps it so). Each has a pure ``plan_*`` where a dry run needs one, and a ``run_*``
that acts and returns a structured result."""
