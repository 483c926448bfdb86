"""`python -m tf_distill ...` runs the command line."""

import sys

from tf_distill.cli import main

sys.exit(main())
