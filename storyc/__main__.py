"""`python -m storyc`: the same command line as the `storyc` script."""

from storyc.cli import main

main()
