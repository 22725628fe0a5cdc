"""The ``curfew`` command line: one subcommand per process, each in its own module.

Installed as ``curfew`` and as ``kubectl-curfew``, which kubectl runs for ``kubectl curfew``.
Every subcommand module exposes ``add_arguments(parser)`` and ``run(args) -> int`` and is imported
only when its command runs (or the full parser is built for ``curfew --help`` and an unknown
command), so ``curfew render`` never loads kopf, ``curfew purge`` never loads the Kubernetes
client, and ``curfew operator`` loads neither the sidecar's, the purge's, the demo's nor the
render command's modules. Exit codes: 0 success, 1 failure or invalid input, 2 usage error.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from curfew import __version__

COMMANDS: dict[str, tuple[str, str]] = {
    # name: (module, one-line help)
    "render": ("render", "print the objects the operator would write for policies and workloads"),
    "validate": ("validate", "check SessionPolicies: schema, cross-field rules, compliance"),
    "report": ("report", "the compliance report of each namespace, as Markdown or HTML"),
    "sidecar": ("sidecar", "run the enforcement sidecar: reverse proxy or ext_authz/auth_request"),
    "operator": ("operator", "run the operator: keep ConfigMaps, CronJobs and status in step"),
    "purge": ("purge", "remove sessions past their limits from the shared store (the CronJob)"),
    "demo": ("demo", "run a sample app behind the sidecar on this machine, with a demo policy"),
}
"""Subcommands: name -> (module under ``curfew.cli``, help line)."""


def build_parser(command: str | None = None, prog: str = "curfew") -> argparse.ArgumentParser:
    """The parser of every subcommand, or, given ``command``, of that one only (the others are
    listed with their help line but their modules are not imported)."""
    parser = argparse.ArgumentParser(
        prog=prog, description="Curfew: one session-timeout policy for every service."
    )
    parser.add_argument("--version", action="version", version=f"curfew {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_line) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_line, description=help_line)
        cmd.set_defaults(_module=module)
        if command is None or command == name:
            importlib.import_module(f"curfew.cli.{module}").add_arguments(cmd)
    return parser


def main(argv: list[str] | None = None, *, prog: str = "curfew") -> int:
    words = sys.argv[1:] if argv is None else argv
    # The only options before a command are --help and --version: its first word is the command.
    command = words[0] if words and words[0] in COMMANDS else None
    parser = build_parser(command, prog)
    args = parser.parse_args(words)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    code: int = importlib.import_module(f"curfew.cli.{args._module}").run(args)
    return code


def kubectl_main() -> int:
    """``kubectl curfew ...``: the same commands as a kubectl plugin (the ``kubectl-curfew``
    entry point kubectl finds on PATH), its usage lines naming the command as it is typed."""
    return main(prog="kubectl curfew")
