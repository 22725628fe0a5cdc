"""``curfew validate``: check SessionPolicies (schema, cross-field rules, compliance profiles)
and print a readable report (errors on stderr). Exit 0 when all are valid and compliant,
1 otherwise, 2 on a usage error."""

from __future__ import annotations

import argparse
import sys

from curfew.api import InvalidPolicy, check_compliance, parse_policy
from curfew.cli.inputs import InputError, UsageError, is_policy, load_documents


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f", "--filename", dest="paths", action="append", required=True, metavar="PATH",
        help="file or directory (searched recursively for *.yaml, *.yml, *.json); repeatable; "
        "- reads stdin",
    )


def run(args: argparse.Namespace) -> int:
    try:
        docs = load_documents(args.paths)
    except UsageError as exc:
        print(f"curfew validate: {exc}", file=sys.stderr)
        return 2
    except InputError as exc:
        print(f"curfew validate: {exc}", file=sys.stderr)
        return 1
    policies = [doc for doc in docs if is_policy(doc)]
    if not policies:
        print(f"curfew validate: no SessionPolicy found in {', '.join(args.paths)}",
              file=sys.stderr)
        return 1
    invalid = noncompliant = 0
    for doc in policies:
        try:
            policy = parse_policy(doc.obj)
        except InvalidPolicy as exc:
            invalid += 1
            for error in exc.errors:
                print(f"INVALID {doc.where}: {error}", file=sys.stderr)
            continue
        violations = check_compliance(policy)
        if violations:
            noncompliant += 1
            for violation in violations:
                print(f"NON-COMPLIANT {doc.where}: {violation}")
            continue
        profiles = policy.spec.compliance.profiles
        meets = f", meets {', '.join(profiles)}" if profiles else ""
        print(f"OK {doc.where}: {policy.key} idle {policy.spec.timeouts.idle}, "
              f"absolute {policy.spec.timeouts.absolute}{meets}")
    good = len(policies) - invalid - noncompliant
    print(f"{len(policies)} polic{'y' if len(policies) == 1 else 'ies'}: {good} valid and "
          f"compliant, {invalid} invalid, {noncompliant} non-compliant")
    return 0 if good == len(policies) else 1
