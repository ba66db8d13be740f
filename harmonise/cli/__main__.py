"""`python -m harmonise.cli`: the same as the `harmonise` command."""

from harmonise.cli import main

main(prog_name="harmonise")
