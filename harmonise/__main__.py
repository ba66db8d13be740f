"""`python -m harmonise`: the same as the `harmonise` command."""

from harmonise.cli import main

main(prog_name="harmonise")
