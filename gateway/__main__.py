"""``python -m gateway`` is ``cemm-gateway``."""

import sys

from gateway.cli import main

sys.exit(main())
