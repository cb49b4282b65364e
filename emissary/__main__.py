"""``python -m emissary``: the ``emissary`` command line (see `emissary._cli`)."""

from ._cli import main

raise SystemExit(main())
