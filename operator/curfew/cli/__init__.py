"""The ``curfew`` command line: one entrypoint per process (render, validate, operator, ...)."""

from __future__ import annotations

import argparse
import sys

from curfew import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="curfew", description=__doc__)
    parser.add_argument("--version", action="version", version=f"curfew {__version__}")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    return 0
