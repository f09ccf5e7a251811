"""storyc's commands as plain functions: typed arguments in, an exit status out.

`storyc/cli.py` only declares the command line (click options, declared once)
and calls these; they call the core and hand results to a reporter
(`storyc.report.Output`).  Failures the user must see are `StorycError`s,
turned into exit status 1 by the one boundary in `storyc.cli`.
"""

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
