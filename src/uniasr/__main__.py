"""`python -m uniasr ...` (also what `torchrun -m uniasr` runs)."""

import sys

from uniasr.cli import main

sys.exit(main())
