"""The study harness: YAML spec -> Optuna study -> every trial trained by `cvae` and logged to MLflow.

The only package that knows Optuna and MLflow. `python -m studies.run SPEC` runs a study.
"""
