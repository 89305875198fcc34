"""`python -m metamlip.train ...` = `metamlip-train ...` (the form torchrun starts)."""

import sys

from metamlip.cli.train import main

sys.exit(main())
