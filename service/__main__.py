"""`fashion-serve` (or `python -m service`): the service under gunicorn with the project's config.

The config is found beside this file, so an installed copy runs from any folder; extra
arguments go to gunicorn (`fashion-serve --workers 4`), FASHION_* variables as documented.
"""

import os
import sys
from pathlib import Path

CONFIG = Path(__file__).with_name("gunicorn.conf.py")
APP = "service.wsgi:app"


def main(argv: list[str] | None = None) -> None:
    """Replace this process with gunicorn, so signals reach its master directly."""
    args = sys.argv[1:] if argv is None else argv
    command = [sys.executable, "-m", "gunicorn", "--config", str(CONFIG), *args, APP]
    os.execv(sys.executable, command)  # noqa: S606 -- a fixed argument list, never a shell


if __name__ == "__main__":
    main()
