"""`python -m dashboard`: the command line (dashboard/cli/)."""

from dashboard.cli.main import main, run

__all__ = ["main"]

if __name__ == "__main__":
    run()
