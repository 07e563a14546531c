"""studies.queue.storage: the default journal, RDB URL or journal path, how a storage is shown (password
redacted), where its lock files live, and one-line errors when it cannot be opened."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from optuna.storages import JournalStorage

from cvae.errors import ConfigError
from studies.queue.storage import default_journal, is_rdb, lock_path, open_storage, storage_label


def test_the_default_journal_is_under_the_working_directorys_mlruns() -> None:
    assert default_journal("smoke") == Path("mlruns") / "optuna" / "smoke.journal"


@pytest.mark.parametrize(("target", "rdb"), [("postgresql+psycopg://u@h/db", True), ("sqlite:///optuna.db", True),
                                             ("mlruns/optuna/smoke.journal", False), ("s.journal", False)])
def test_is_rdb(target, rdb) -> None:
    assert is_rdb(target) is rdb


def test_storage_label_redacts_a_password_and_resolves_a_journal() -> None:
    assert storage_label("postgresql://alice:s3cret@db/optuna") == "postgresql://alice:***@db/optuna"
    assert storage_label("s.journal") == str(Path("s.journal").resolve())


def test_lock_files_are_outside_the_project_one_per_storage_study_and_kind() -> None:
    run = lock_path(storage="s.journal", study="smoke", kind="run")
    assert run.parent == Path(tempfile.gettempdir()) / "cvae-studies" and run.name.endswith(".run.lock")
    assert run == lock_path(storage="s.journal", study="smoke", kind="run")
    assert len({run, lock_path(storage="s.journal", study="smoke", kind="claim"),
                lock_path(storage="s.journal", study="other", kind="run"),
                lock_path(storage="t.journal", study="smoke", kind="run")}) == 4


def test_a_journal_is_created_with_its_folder(tmp_path: Path) -> None:
    storage = open_storage(str(tmp_path / "new" / "s.journal"))
    assert isinstance(storage, JournalStorage) and (tmp_path / "new").is_dir()


def test_a_storage_that_cannot_be_opened_is_one_line_without_its_password(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^--storage .*: cannot open: IsADirectoryError"):
        open_storage(str(tmp_path))
    with pytest.raises(ConfigError) as info:
        open_storage("postgresql+psycopg://u:s3cret@127.0.0.1:1/nothing")
    message = str(info.value)
    assert message.startswith("--storage postgresql+psycopg://u:***@127.0.0.1:1/nothing: cannot open:")
    assert "s3cret" not in message and "\n" not in message


def _study_with_a_finished_last_trial(folder):
    """The smoke study's journal with every (configuration, seed) finished: the last record is the last tell."""
    import optuna
    from optuna.trial import TrialState

    from studies.queue.claim import claim, prepare
    from studies.queue.trials import open_study
    from studies.spec import load_spec

    spec = load_spec("smoke.yaml")
    path = folder / "smoke.journal"
    storage = open_storage(str(path))
    study = open_study(spec=spec, storage=storage, label="test")
    prepare(study=study, spec=spec)
    while (trial := claim(spec=spec, storage=storage, lock=folder / "claim.lock")) is not None:
        trial.set_user_attr("status", "works")
        study.tell(trial, [1.0], state=TrialState.COMPLETE)
    assert path.read_bytes().endswith(b"\n")
    return spec, path, optuna


def test_a_journal_torn_at_any_offset_of_its_last_record_resumes_with_no_trial_lost(tmp_path):
    """A crash (or a full disk) cuts the last record short: the study opens, every trial finished before it is
    kept, the trial of the torn record is trained again, and every later open reads the journal (Optuna alone would
    glue its next record onto the torn line, and every read after that fails)."""
    from optuna.trial import TrialState

    from studies.preflight import check_storage
    from studies.queue.claim import pending, prepare
    from studies.queue.trials import load_study
    from studies.queue.storage import repair_journal

    spec, path, optuna = _study_with_a_finished_last_trial(tmp_path)
    whole = path.read_bytes()
    start = whole.rstrip(b"\n").rfind(b"\n") + 1  # where the last record begins
    last = whole[start:]
    for cut in range(len(last) - 1):  # every offset inside the last record, newline excluded
        torn = tmp_path / f"torn-{cut}" / "smoke.journal"
        torn.parent.mkdir()
        torn.write_bytes(whole[:start + cut])
        check_storage(str(torn))  # preflight accepts a torn tail, and writes nothing
        assert torn.read_bytes() == whole[:start + cut]
        assert repair_journal(torn) == cut
        for _ in range(2):  # resume, then resume again: nothing locked, nothing glued
            study = load_study(spec=spec, storage=open_storage(str(torn)))
            prepare(study=study, spec=spec)
            trials = study.get_trials(deepcopy=False)
            assert sum(t.state == TrialState.COMPLETE for t in trials) == 3
            assert pending(study=study, spec=spec) == 1
            assert repair_journal(torn) == 0


def test_a_journal_damaged_in_the_middle_is_refused_in_one_line_by_its_line(tmp_path):
    from studies.preflight import check_storage

    _, path, _ = _study_with_a_finished_last_trial(tmp_path)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[3] = lines[3][:20] + lines[4]  # a record written over a torn one, as an older version could leave it
    path.write_bytes(b"".join(lines))
    with pytest.raises(ConfigError, match=r"line 4: not an Optuna journal record: the journal is damaged"):
        check_storage(str(path))


def test_repair_leaves_a_sound_journal_and_other_files_alone(tmp_path):
    from studies.queue.storage import repair_journal

    _, path, _ = _study_with_a_finished_last_trial(tmp_path)
    before = path.read_bytes()
    assert repair_journal(path) == 0 and path.read_bytes() == before
    assert repair_journal(tmp_path / "absent.journal") == 0
