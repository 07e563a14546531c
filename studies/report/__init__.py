"""The report of a study, read back from MLflow: ``read`` (MLflow -> typed tables), ``analysis`` (seeds aggregated,
the ranking, the winner, the maps' cells), ``tables``, ``figures``, ``document`` (markdown and html), ``build`` (the
report itself). ``python -m studies.report STUDY`` builds it. Nothing here imports the queue, the worker or torch."""

from studies.report.analysis import Best, aggregate, find_best, winner
from studies.report.build import build_report, main
from studies.report.read import ReportError, StudyRuns, load_study, open_client

__all__ = ["Best", "ReportError", "StudyRuns", "aggregate", "build_report", "find_best", "load_study", "main",
           "open_client", "winner"]
