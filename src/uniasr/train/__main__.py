"""``python -m uniasr.train {train,eval} ...`` (and ``torchrun ... -m uniasr.train train ...``)."""

import sys

from uniasr.train.cli import main

sys.exit(main())
