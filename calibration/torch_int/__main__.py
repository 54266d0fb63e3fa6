"""`python -m calibration.torch_int convert SRC DST [--overwrite]` and `... compare` (see cli.py)."""

import sys

from calibration.torch_int.cli import main

if __name__ == "__main__":
    sys.exit(main())
