"""``python -m training`` and ``accelerate launch -m training``: the training CLI."""

import sys

from training.cli import main

sys.exit(main())
