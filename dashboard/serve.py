"""`streamlit run`, with the dashboard's guards (dashboard/guard.py) installed before the server starts:
`python -m dashboard.serve run dashboard/app.py --server.port ...` takes what `streamlit` takes."""

from __future__ import annotations

import sys

from dashboard import guard
from orchard import logs


def main() -> None:
    logs.setup("INFO")  # the dashboard's own structured lines (a refused cache clear, ...)
    guard.install()
    from streamlit.web.cli import main as streamlit

    sys.argv = ["streamlit", *sys.argv[1:]]
    streamlit()


if __name__ == "__main__":
    main()
