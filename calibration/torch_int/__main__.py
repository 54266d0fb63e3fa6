"""`python -m calibration.torch_int`: measure conversion fidelity on a tiny OPT (see compare.py)."""

from calibration.torch_int.compare import main

if __name__ == "__main__":
    main()
