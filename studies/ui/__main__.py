"""`python -m studies.ui STUDY`: the study in MLflow's UI (``studies.ui.browse``)."""

import sys

from studies.ui.browse import main

sys.exit(main())
