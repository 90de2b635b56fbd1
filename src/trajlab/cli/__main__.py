"""`python -m trajlab.cli`: the same as the `trajlab` command."""

from trajlab.cli import main

main()
