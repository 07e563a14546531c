"""Hallucinated verbs (data hallucination, Anastasopoulos & Neubig 2019, "Pushing the Limits of Low-Resource
Morphological Inflection"): made-up verbs built from the training rows, on which a decoder that reads its source
cannot lean on memory. A row's stem (the start its four forms share) keeps its last ``KEEP`` letters, which decide
the spelling of the endings (stop -> stopped, try -> tried, make -> making), and its start is replaced by the start
of another row's stem cut at a random length (from one letter to all of it): walk + grab -> gralk, gralks,
gralking, gralked, or glk, ... . Cut so, a made-up verb is as often short as long: short stems (rip, nip, trip) are
where a copying decoder runs past its source ("ripened", "tripoded"), and whole starts of distinct verbs made
three-letter stems rare (screening in docs/results.md). Trained as conversions read from the
source (``train.hallucinate``), they teach the decoder to copy a stem and rewrite its ending: what a verb it never
saw needs. They never reach the latent's z-only path, prior fill or the Gaussian score."""

from __future__ import annotations

import random
from collections.abc import Sequence

from cvae.config import MAX_WORD_LENGTH

KEEP = 2
"""Letters at the end of a stem that a hallucinated verb keeps."""


def stem(row: Sequence[str]) -> str:
    """The longest start the forms of ``row`` share (`walk` for walk walks walking walked; `tr` for try tried)."""
    shortest = min(row, key=len)
    for length in range(len(shortest), 0, -1):
        if all(form.startswith(shortest[:length]) for form in row):
            return shortest[:length]
    return ""


class Hallucinator:
    """Draws hallucinated rows from training rows; deterministic for a given ``random.Random``."""

    def __init__(self, rows: Sequence[Sequence[str]]) -> None:
        stems = [stem(row) for row in rows]
        self.rows = [(tuple(row), s) for row, s in zip(rows, stems) if len(s) >= KEEP]
        self.starts = [s[:-KEEP] for _, s in self.rows if len(s) > KEEP]  # starts to cut and splice in, one a row

    def __bool__(self) -> bool:
        return bool(self.rows and self.starts)

    def draw(self, n: int, rng: random.Random) -> list[tuple[str, ...]]:
        """``n`` hallucinated rows (four forms in tense order)."""
        out: list[tuple[str, ...]] = []
        while len(out) < n:
            row, old = self.rows[rng.randrange(len(self.rows))]
            start = self.starts[rng.randrange(len(self.starts))]
            start = start[:rng.randint(1, len(start))]
            new = start + old[-KEEP:]
            forms = tuple(new + form[len(old):] for form in row)
            if max(map(len, forms)) <= MAX_WORD_LENGTH:
                out.append(forms)
        return out
