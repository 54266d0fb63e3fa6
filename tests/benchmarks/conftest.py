"""The benchmark scripts are run as `python -m benchmarks.<name>` from the repository root: import them alike."""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
