"""The commands of `python -m runbook` that help write descriptions and set a project up.

One module per command, each with `add(commands)` (its argparse subparser) and
`run(args) -> exit code`; `runbook/__main__.py` only dispatches. Exit codes are the
suite's: 0 fine, 1 something to look at, 4 the input cannot be used.
"""

EXIT_OK, EXIT_FOUND, EXIT_USAGE = 0, 1, 4
