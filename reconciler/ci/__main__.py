"""``python -m reconciler.ci plan|apply|drift``: the GitHub Action's steps (see ``action.py``)."""

import sys

from reconciler.ci.action import run
from reconciler.safetext import masking_output

sys.exit(masking_output(run)())
