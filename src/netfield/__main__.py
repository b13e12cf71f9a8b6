"""``python -m netfield``: the same as the ``netfield`` command."""

from .cli import main

raise SystemExit(main())
