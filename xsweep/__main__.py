"""``python -m xsweep``: the ``xsweep`` command line (see :mod:`xsweep.cli`)."""

from .cli import main

raise SystemExit(main())
