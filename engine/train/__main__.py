"""`python -m engine.train ...`: the training command line (engine/train/cli.py)."""
from .cli import main

raise SystemExit(main())
