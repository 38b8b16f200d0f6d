"""``python -m toolkit``: the ``toolkit`` command (export, predict, quantize)."""
import sys

from .deploy.cli import main

sys.exit(main())
