"""Entry point of `python -m calibration` and the `smoothquant-calibrate` console script."""

import sys

from calibration.cli import main

if __name__ == "__main__":
    sys.exit(main())
