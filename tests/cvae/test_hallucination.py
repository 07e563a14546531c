import random

from hypothesis import given, settings
from hypothesis import strategies as st

from cvae.config import ExperimentConfig
from cvae.data import read_train
from cvae.hallucination import KEEP, Hallucinator, stem
from tests.conftest import DATA


def test_a_stem_is_the_start_every_form_shares():
    assert stem(("walk", "walks", "walking", "walked")) == "walk"
    assert stem(("try", "tries", "trying", "tried")) == "tr"
    assert stem(("go", "goes", "going", "went")) == ""


def test_hallucinated_verbs_keep_their_rows_endings_and_are_made_up():
    rows = read_train(DATA / "train.txt")
    known = {w for row in rows for w in row}
    made = Hallucinator(rows).draw(300, random.Random(0))
    assert len(made) == 300
    assert sum(row[0] in known for row in made) < 30  # almost all are new verbs
    endings = {tuple(form[len(stem(row)) - KEEP:] for form in row) for row in rows if len(stem(row)) >= KEEP}
    for row in made:  # each form ends as the same tense's form of one training row, from its stem's last letters
        assert any(all(form.endswith(end) for form, end in zip(row, ending)) for ending in endings)


@settings(max_examples=50, deadline=None, derandomize=True)
@given(rows=st.lists(st.tuples(*[st.text(alphabet="abcde", min_size=1, max_size=6)] * 4), min_size=1, max_size=20),
       seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_any_rows_hallucinate_four_words_of_the_alphabet_or_nothing(rows, seed):
    hallucinator = Hallucinator(rows)
    if not hallucinator:
        return
    made = hallucinator.draw(10, random.Random(seed))
    assert made == Hallucinator(rows).draw(10, random.Random(seed))
    assert all(len(row) == 4 and all(form and set(form) <= set("abcde") for form in row) for row in made)


def test_the_labs_decoder_ignores_hallucination():
    """A decoder without a source has nothing to learn from hallucinated verbs: the setting is accepted, unused."""
    from cvae.data import Data
    from cvae.trainer import Trainer

    config = ExperimentConfig.model_validate({"train": {"hallucinate": 0.5}, "data": {"max_verbs": 20},
                                              "model": {"hidden_size": 16, "embed_size": 8, "latent_size": 4}})
    assert not Trainer(config, Data.load(config)).hallucinator
    copy = config.model_copy(update={"model": config.model.model_copy(update={"decoder": "copy"})})
    assert Trainer(copy, Data.load(copy)).hallucinator


def test_short_made_up_verbs_are_at_least_as_common_as_short_training_verbs():
    """A copying decoder runs past short sources (rip -> ripened) unless it trains on short verbs: made-up stems of
    at most KEEP + 1 letters are drawn at least as often as the training rows have them."""
    rows = read_train(DATA / "train.txt")
    made = Hallucinator(rows).draw(2000, random.Random(1))

    def short(rows) -> float:
        return sum(len(stem(row)) <= KEEP + 1 for row in rows) / len(rows)

    assert short(made) >= short(rows)
