"""Run the CLI as ``python -m curfew``."""

from curfew.cli import main

raise SystemExit(main())
