"""``python -m marl_torchrl.report ...`` runs :func:`marl_torchrl.report.cli.main`."""
import sys

from marl_torchrl.report.cli import main

if __name__ == "__main__":
    sys.exit(main())
