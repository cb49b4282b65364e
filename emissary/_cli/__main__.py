"""``python -m emissary._cli``: the ``emissary`` command line."""

from . import main

raise SystemExit(main())
