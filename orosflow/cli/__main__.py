"""``python -m orosflow.cli``: the orosflow command."""

import sys

from orosflow.cli.main import main

sys.exit(main())
