"""Start the app: ``python -m explainer.ui.tools.serve [streamlit options]`` (what ./run.sh does).

Streamlit starts in its old multipage mode whenever a folder named ``pages/`` sits beside the
entry script; a deep link like ``/attention`` would then run that page file without app.py
(untranslated navigation, no page config). app.py's ``st.navigation`` owns routing here, so
the old mode is switched off before the server starts.
"""
from __future__ import annotations

import sys

from explainer.paths import REPO_ROOT


def main() -> int:
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.web import cli

    PagesManager.uses_pages_directory = False
    sys.argv = ["streamlit", "run", str(REPO_ROOT / "app.py"), *sys.argv[1:]]
    return cli.main()


if __name__ == "__main__":
    sys.exit(main())
