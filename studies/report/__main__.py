"""`python -m studies.report STUDY`: a study's runs in MLflow -> tables, figures, report.md and report.html.

The report goes to `--out` (default `reports/<study>/`) and, when the study's parent run exists, is logged as
its artifacts under `report/` so that `mlflow ui` shows it (``studies.report.build``)."""

import sys

from studies.report.build import main

if __name__ == "__main__":
    sys.exit(main())
