"""``python -m deeprelax`` — same as the ``deeprelax`` console script."""

from deeprelax.cli import main

raise SystemExit(main())
