"""The Vestige workshop: four exercises on local branches, and a check for each.

Each exercise lives in ``workshop/exercise-N/``: ``README.md`` (the instructions),
``start/`` (the files the learner starts from) and ``solution/`` (the files that differ
once it is solved). ``./scripts/workshop setup`` turns them into the branches
``exercise-N`` and ``solution-N``, where the files sit in ``exercise/`` at the root;
``./scripts/workshop check N`` says whether exercise N is done. See workshop/README.md.
"""

from __future__ import annotations
