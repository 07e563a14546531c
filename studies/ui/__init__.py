"""What a user sees of a study: the live board and closing tables in the terminal (``display``), and the study in
MLflow's UI on its runs table (``browse``, `python -m studies.ui STUDY`)."""
