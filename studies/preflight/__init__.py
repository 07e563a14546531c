"""Every check made before a command does any work: what the study trains (``study``: data, resources, devices)
and where it writes (``stores``: the study storage, the tracking store). Each refuses with a one-line ConfigError
naming the flag or the file and key, and writes nothing; only the commands import this package."""

from studies.preflight.stores import (
                                      MLFLOW_TABLES,
                                      check_mlflow_database,
                                      check_reader,
                                      check_storage,
                                      check_tracking_uri,
                                      mlflow_revisions,
                                      probe_storage,
                                      probe_tracking_store,
                                      sqlite_file,
                                      sqlite_tables,
)
from studies.preflight.study import check_data, check_devices, check_resources

__all__ = ["MLFLOW_TABLES", "check_data", "check_devices", "check_mlflow_database", "check_reader", "check_resources",
           "check_storage", "check_tracking_uri", "mlflow_revisions", "probe_storage", "probe_tracking_store",
           "sqlite_file", "sqlite_tables"]
