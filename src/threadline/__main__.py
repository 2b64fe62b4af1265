"""Allow `python -m threadline`."""

import sys

from threadline.cli import main

sys.exit(main())
