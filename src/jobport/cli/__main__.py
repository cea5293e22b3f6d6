"""`python -m jobport.cli`: the `jobport` command."""

import sys

from jobport.cli import main

sys.exit(main())
