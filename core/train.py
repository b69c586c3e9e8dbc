"""`python -m core.train ...`: the stable command for training runs (see core.training.train).

Runs started before the code moved into core/training/ resume with the same command line.
"""

from core.training.train import main

if __name__ == "__main__":
    main()
