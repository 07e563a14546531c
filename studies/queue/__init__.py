"""The Optuna side of a study: its storage and locks, the queue of (configuration, seed) trials, the heartbeat.

One Optuna trial = one (configuration, seed); every change to the queue happens under ``study_lock``
(``studies.queue.claim`` says how trials are enqueued and claimed, and what happens to a dead worker's trial).
"""

from studies.queue.claim import claim, enqueue_missing, pending, prepare
from studies.queue.heartbeat import fail_stale
from studies.queue.locks import FileLock, study_lock
from studies.queue.storage import default_journal, is_rdb, lock_path, open_storage, storage_label
from studies.queue.trials import is_done, load_study, open_study, ranked_configurations, trial_params

__all__ = ["FileLock", "claim", "default_journal", "enqueue_missing", "fail_stale", "is_done", "is_rdb", "load_study",
           "lock_path", "open_storage", "open_study", "pending", "prepare", "ranked_configurations", "storage_label",
           "study_lock", "trial_params"]
