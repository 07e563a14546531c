"""The name of every figure an evaluated epoch reports, defined once, with what it measures.

The namespace says what a figure is measured on:
- ``train/*``: averaged over the epoch's optimizer steps, in training mode;
- ``test/*``: the lab's evaluation: BLEU-4 on its test conversions and its Gaussian score (prior draws decoded in
  the four tenses); reported, never used to choose anything;
- ``heldout/*``: BLEU-4 on conversions of verbs that training never saw (when the data has them);
- ``val/*``: the checkpoint-choice figures, on data kept apart from the test: BLEU-4 on validation conversions of
  training verbs (and of verbs withheld from training, when ``data.val_verbs`` withholds some), and the
  distinct-row Gaussian score of a separate noise draw; every objective is computed from these
  (``cvae.scoring``);
- ``latent/*``: the posterior over every training word at evaluation (eval mode).

``cvae.trainer`` writes these keys, ``cvae.scoring`` judges on them, and ``studies.contract`` builds what a study
stores in Optuna and MLflow from them (docs/tracking-contract.md; a test checks the document names each one).
"""

from __future__ import annotations

TRAIN_LOSS = "train/loss"
TRAIN_RECON = "train/recon"
TRAIN_KL = "train/kl"
TRAIN_KL_WEIGHT = "train/kl_weight"
TRAIN_TF_RATIO = "train/tf_ratio"
TRAIN_LR = "train/lr"
TRAIN_GRAD_NORM_MEAN = "train/grad_norm_mean"
TRAIN_GRAD_NORM_MAX = "train/grad_norm_max"
TRAIN_WORDS_PER_S = "train/words_per_s"
TRAIN_EPOCH_TIME = "train/epoch_time_s"

TEST_BLEU = "test/bleu4"
TEST_GAUSSIAN = "test/gaussian"
TEST_GAUSSIAN_UNIQUE = "test/gaussian_unique"
HELDOUT_BLEU = "heldout/bleu4"
VAL_BLEU = "val/bleu4"
VAL_GAUSSIAN = "val/gaussian"
VAL_UNSEEN_BLEU = "val/unseen_bleu4"
LATENT_KL = "latent/kl"
LATENT_LOGVAR_ABSMAX = "latent/logvar_absmax"
LATENT_ACTIVE_UNITS = "latent/active_units"
LATENT_MUTUAL_INFO = "latent/mutual_info"


def module_grad_norm(module: str, stat: str) -> str:
    """The pre-clip gradient norm of one module's parameters (``encoder``/``decoder``), ``mean`` or ``max``."""
    return f"train/grad_norm_{module}_{stat}"


GRAD_MODULES = ("encoder", "decoder")
"""Parameter groups whose gradient norms are reported apart (the encoder includes the tense embedding)."""

EPOCH: dict[str, str] = {
    TRAIN_LOSS: "loss per word (reconstruction + weighted KL, + prior fill)",
    TRAIN_RECON: "reconstruction cross-entropy per word, summed over characters",
    TRAIN_KL: "KL per word of the batch, summed over latent dimensions (nats)",
    TRAIN_KL_WEIGHT: "the KL weight (beta) of the schedule",
    TRAIN_TF_RATIO: "the teacher-forcing ratio",
    TRAIN_LR: "the learning rate at the epoch's last step",
    TRAIN_GRAD_NORM_MEAN: "pre-clip global gradient norm, mean over the steps",
    TRAIN_GRAD_NORM_MAX: "pre-clip global gradient norm, max over the steps",
    **{module_grad_norm(module, stat): f"pre-clip gradient norm of the {module}, {stat} over the steps"
       for module in GRAD_MODULES for stat in ("mean", "max")},
    TRAIN_WORDS_PER_S: "training words per second",
    TRAIN_EPOCH_TIME: "seconds the epoch's training took",
    TEST_BLEU: "BLEU-4 of the lab's test conversions (greedy decoding from the posterior mean)",
    TEST_GAUSSIAN: "the lab's Gaussian score: share of prior draws whose four words form a training row",
    TEST_GAUSSIAN_UNIQUE: "the same draws, counting distinct training rows (a decoder that repeats one row "
                          "cannot game it)",
    HELDOUT_BLEU: "BLEU-4 of conversions of verbs never seen in training (only when the data has them)",
    VAL_BLEU: "BLEU-4 of validation conversions of training verbs (checkpoint choice); with verbs withheld "
              "(data.val_verbs), the mean of that and val/unseen_bleu4",
    VAL_UNSEEN_BLEU: "BLEU-4 of validation conversions of the verbs withheld from training (data.val_verbs)",
    VAL_GAUSSIAN: "distinct-row Gaussian score of a separate draw of train.select_samples (checkpoint choice)",
    LATENT_KL: "KL of the posterior from the prior over the training words, summed over dimensions (nats)",
    LATENT_LOGVAR_ABSMAX: "largest |posterior log-variance| over the training words",
    LATENT_ACTIVE_UNITS: "latent dimensions whose posterior mean varies across words (variance > 0.01; "
                         "Burda et al. 2016)",
    LATENT_MUTUAL_INFO: "mutual information between word and latent, estimated on a fixed subset",
}
"""Every figure of an evaluated epoch, in the order they are shown, with what it measures."""
OPTIONAL = (HELDOUT_BLEU, VAL_UNSEEN_BLEU)
"""Figures an epoch reports only when the data has what they need."""
