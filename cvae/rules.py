"""The rule baseline for verbs a model never saw: learnt from the training file, deterministic. For each tense
direction (source tense -> target tense), every training verb gives a rewrite of its source form into its target
form (drop the last k letters, append a suffix), filed under each ending of the source form long enough to hold the
dropped letters. A new word is rewritten by the most frequent rewrite of its longest ending seen in training. It is
the honest floor for unseen verbs: a model that converts them worse than this has only memorised its training words.
It is a reference printed beside the model, never part of it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from cvae.data import TENSES, Pair
from cvae.metrics import mean_bleu4

Rewrite = tuple[int, str]
"""(letters dropped from the end of the source form, suffix appended)."""


def rewrite_of(source: str, target: str) -> Rewrite:
    """The rewrite that turns ``source`` into ``target`` after their longest common prefix."""
    common = 0
    for a, b in zip(source, target):
        if a != b:
            break
        common += 1
    return len(source) - common, target[common:]


@dataclass(frozen=True)
class RuleBaseline:
    """Per direction: ending of the source form -> counts of the rewrites seen under it."""

    table: dict[tuple[int, int], dict[str, Counter[Rewrite]]]

    @classmethod
    def learn(cls, rows: Sequence[Sequence[str]]) -> "RuleBaseline":
        """Learn every direction's rewrites from training rows (the four forms of a verb, in tense order)."""
        table: dict[tuple[int, int], dict[str, Counter[Rewrite]]] = {}
        for src in range(len(TENSES)):
            for tgt in range(len(TENSES)):
                if src == tgt:
                    continue
                endings: dict[str, Counter[Rewrite]] = {}
                for row in rows:
                    source, target = row[src], row[tgt]
                    dropped, suffix = rewrite_of(source, target)
                    for start in range(len(source) - dropped, -1, -1):  # endings holding the dropped letters
                        endings.setdefault(source[start:], Counter())[(dropped, suffix)] += 1
                table[(src, tgt)] = endings
        return cls(table=table)

    def convert(self, word: str, *, source: int, target: int) -> str:
        """``word`` (in tense ``source``) in tense ``target``, by the rewrite of its longest ending seen."""
        if source == target:
            return word
        endings = self.table[(source, target)]
        for start in range(len(word) + 1):
            counts = endings.get(word[start:])
            if counts:
                (dropped, suffix), _ = min(counts.items(), key=lambda item: (-item[1], item[0]))
                if dropped <= len(word):
                    return word[: len(word) - dropped] + suffix
        return word

    def bleu4(self, pairs: Sequence[Pair]) -> float:
        """Mean BLEU-4 of the baseline's conversions of ``pairs`` (as the model's are scored)."""
        predictions = [self.convert(p.source, source=p.src, target=p.tgt) for p in pairs]
        return mean_bleu4(predictions, [p.target for p in pairs])

    def exact(self, pairs: Sequence[Pair]) -> float:
        """Share of ``pairs`` converted letter for letter."""
        hits = sum(self.convert(p.source, source=p.src, target=p.tgt) == p.target for p in pairs)
        return hits / len(pairs) if pairs else 0.0
