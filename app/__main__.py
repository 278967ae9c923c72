"""`python -m app [serve|doctor|config]` (serve by default)."""

import sys

from app.cli import main

sys.exit(main())
