"""How fragile is a topic classifier to typos, OCR errors and word noise?

Trains a TF-IDF character n-gram logistic regression on the English
utterances of ``chatterbot-corpus`` (8 topics), sweeps every text
perturbation over magnitudes 0–0.4 with ``perturbkit.sweep``, prints the
accuracy curve, shows a few perturbed sentences with the changes marked
``[like this]``, and measures how pairs of perturbations interact. With
``--out DIR`` it also saves the interaction heatmap (``text_interactions.png``).

Run:   .venv/bin/python examples/text_robustness.py [--quick] [--out DIR]
Needs: pip install chatterbot-corpus (a small built-in corpus stands in
       without it); synonym substitution needs apt-get install mythes-en-us.
"""

from __future__ import annotations

import argparse
import difflib
from pathlib import Path

import numpy as np

import perturbkit as pk
from perturbkit import perturbations
from perturbkit.analysis.interactions import interaction_heatmap, interactions

TOPICS = ("ai", "computers", "emotion", "food", "greetings", "money", "science", "sports")
FALLBACK = {
    "food": ["do you like pizza", "what do you eat", "i am hungry", "is bread good for you"],
    "money": ["how much does it cost", "i need a loan", "what is a stock", "banks hold money"],
    "sports": ["who won the game", "do you play football", "i love tennis", "the team scored"],
    "greetings": ["hello there", "good morning", "how are you", "nice to meet you"],
}


def load_corpus() -> tuple[list[str], list[str], str]:
    try:
        import yaml
        from chatterbot_corpus.corpus import DATA_DIRECTORY
    except ImportError:
        texts = [t for topic in FALLBACK for t in FALLBACK[topic] * 6]
        labels = [topic for topic in FALLBACK for _ in FALLBACK[topic] * 6]
        return texts, labels, "a small built-in corpus (pip install chatterbot-corpus)"
    seen: dict[str, str] = {}
    for topic in TOPICS:
        data = yaml.safe_load((Path(DATA_DIRECTORY) / "english" / f"{topic}.yml").read_text())
        for conv in data.get("conversations") or []:
            for s in conv:
                if isinstance(s, str) and s.strip():
                    seen.setdefault(s, topic)
    return list(seen), list(seen.values()), "chatterbot-corpus (English, 8 topics)"


def marked(before: str, after: str) -> str:
    """``after`` with its changes from ``before`` in brackets."""
    out = []
    for op, _, _, j1, j2 in difflib.SequenceMatcher(None, before, after).get_opcodes():
        piece = after[j1:j2]
        out.append(piece if op == "equal" else f"[{piece}]" if piece else "[·]")
    return "".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer magnitudes and repeats")
    ap.add_argument("--out", type=Path, default=None, help="folder for the heatmap PNG")
    args = ap.parse_args()

    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline

    texts, labels, source = load_corpus()
    X_tr, X_te, y_tr, y_te = train_test_split(
        texts, labels, test_size=0.3, random_state=0, stratify=labels
    )
    pipe = make_pipeline(
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True),
        LogisticRegression(max_iter=2000, C=10.0, solver="newton-cg"),
    ).fit(X_tr, y_tr)
    classes = list(pipe.classes_)
    y = np.asarray([classes.index(c) for c in y_te])
    model = pk.wrap(lambda batch: pipe.predict_proba(list(batch)), task="classification")
    print(f"{len(texts)} utterances from {source}; test accuracy {pipe.score(X_te, y_te):.2f}")

    names = [
        n
        for n in perturbations.list("text")
        if n != "synonym_substitution" or Path("/usr/share/mythes/th_en_US_v2.dat").exists()
    ]
    mags = [0, 0.1, 0.4] if args.quick else [0, 0.05, 0.1, 0.2, 0.4]
    result = pk.sweep(
        model,
        X_te,
        y,
        perturbations=names,
        magnitudes=mags,
        repeats=1 if args.quick else 3,
        seed=0,
        progress=False,
    )
    print("\naccuracy by magnitude (fraction of characters or words edited):")
    print(result.curve("accuracy").T.round(3).to_string())

    print("\nthe first test sentence at magnitude 0.2 (changes in brackets):")
    first = X_te[0]
    print(f"  {'clean':22s} {first}")
    for i, name in enumerate(names):  # its own seed each: one seed would pick the same characters
        print(f"  {name:22s} {marked(first, perturbations.get(name)([first], 0.2, 10 + i)[0])}")

    table = interactions(
        model,
        X_te,
        y,
        perturbations=["keyboard_typos", "word_drop", "ocr_errors", "case_changes"],
        magnitude=0.2,
        repeats=3 if args.quick else 8,
        seed=0,
    )
    cols = ["label", "delta", "additive", "interaction", "interaction_low", "interaction_high"]
    print("\naccuracy drop alone and in pairs, and the interaction (pair − sum of singles):")
    print(table[cols].round(3).to_string(index=False))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        interaction_heatmap(table).savefig(args.out / "text_interactions.png", dpi=120)
        print(f"wrote {args.out / 'text_interactions.png'}")


if __name__ == "__main__":
    main()
