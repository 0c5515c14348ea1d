from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent  # the repository root: tests may run from anywhere
