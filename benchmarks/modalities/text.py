"""Text perturbations against nlpaug's character augmenters: sentences per second and fidelity.

Inputs: the English utterances of ``chatterbot-corpus`` (4,419 lines in 21
topics, deduplicated; ``pip install chatterbot-corpus``), cycled to
``--sentences`` lines. Without the package a fixed synthetic corpus is used
and the JSON says so.

Pairs (ours → nlpaug 1.1.11, default settings: 30 % of the words, 30 % of a
chosen word's characters, at most 10 of each):

    keyboard_typos → KeyboardAug          ocr_errors  → OcrAug
    char_insert    → RandomCharAug(insert) char_swap → RandomCharAug(swap)
    char_delete    → RandomCharAug(delete)

Fidelity: the realised change, as the Levenshtein distance between input and
output over the input's length (mean over the first 300 sentences), is
measured for nlpaug first; our magnitude is then calibrated on the same
sentences so that our realised change matches it (two secant steps from
magnitude 0.1), and both realised changes are printed side by side.

Speed: seconds per batch (median and IQR over ``--repeats`` runs after one
warm-up), turned into sentences per second; ours includes its draws and the
conversion to and from Python strings; nlpaug's ``augment(list)`` runs one
sentence at a time, as it does. The peer runs as a server in its own process
and the two are timed in alternation, one run each in turn, so that a busy
machine slows both alike. ``floor`` is the bare codec our
implementation rests on (encode the batch to one array of code points,
decode and split it back): the least a vectorised implementation can pay.
Target: ours ≥ 10× nlpaug on every pair. Both run single-threaded.

nlpaug runs in its own interpreter, a venv the script makes on first use
(``--peer-venv``, default ``~/.cache/perturbkit/peers/text``), never in
perturbkit's dependencies. This file is also the peer's entry point
(``--serve SPEC``), which imports only the standard library and nlpaug.

Run:  .venv/bin/python benchmarks/modalities/text.py [--quick] [--json]
      (writes benchmarks/results/modalities_text.json unless --quick)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from _peers import Peer, ensure_peer_venv, interleave, serve

HERE = Path(__file__).resolve().parent
PEER_PINS = ["nlpaug==1.1.11"]
DEFAULT_PEER_VENV = (
    Path(os.environ.get("PERTURBKIT_PEERS", Path.home() / ".cache" / "perturbkit" / "peers"))
    / "text"
)
PAIRS = {
    "keyboard_typos": ("KeyboardAug", {}),
    "ocr_errors": ("OcrAug", {}),
    "char_insert": ("RandomCharAug", {"action": "insert"}),
    "char_swap": ("RandomCharAug", {"action": "swap"}),
    "char_delete": ("RandomCharAug", {"action": "delete"}),
}
N_FIDELITY = 300


# -- shared helpers (standard library only: the peer runs them too) ---------------------
def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions), two rows at a time."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def change(before: list[str], after: list[str]) -> float:
    """Edit distance over input length, summed over the sentences."""
    return sum(levenshtein(a, b) for a, b in zip(before, after)) / sum(map(len, before))


# -- the peer side: runs in the nlpaug venv ---------------------------------------------
def peer_serve(spec_path: str) -> None:
    """Set up, report fidelity on one JSON line, then time one run per op name read from stdin."""
    import random
    import warnings

    warnings.filterwarnings("ignore")
    import nlpaug
    import nlpaug.augmenter.char as nac

    sentences = json.loads(Path(spec_path).read_text())["sentences"]
    random.seed(0)
    augs = {ours: getattr(nac, cls)(**kwargs) for ours, (cls, kwargs) in PAIRS.items()}
    report: dict[str, Any] = {"nlpaug": nlpaug.__version__}
    for ours, (cls, kwargs) in PAIRS.items():
        sample = augs[ours].augment(sentences[:N_FIDELITY])
        report[ours] = {
            "augmenter": f"{cls}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})",
            "change": change(sentences[:N_FIDELITY], sample),
        }
    serve(report, lambda name: augs[name].augment(sentences))


# -- the main side ------------------------------------------------------------------------
def corpus(n: int) -> tuple[list[str], str]:
    try:
        import yaml
        from chatterbot_corpus.corpus import DATA_DIRECTORY
    except ImportError:
        words = "the robot said it would eat pizza if it could taste food at all today".split()
        lines = [" ".join(words[(i + k) % len(words)] for k in range(8 + i % 7)) for i in range(97)]
        return [lines[i % len(lines)] for i in range(n)], "synthetic (chatterbot-corpus missing)"
    seen: dict[str, None] = {}
    for f in sorted((Path(DATA_DIRECTORY) / "english").glob("*.yml")):
        for conv in yaml.safe_load(f.read_text(encoding="utf-8")).get("conversations") or []:
            for s in conv:
                if isinstance(s, str) and s.strip():
                    seen.setdefault(s, None)
    lines = list(seen)
    return [lines[i % len(lines)] for i in range(n)], f"chatterbot-corpus english ({len(lines)})"


def floor_codec(sentences: list[str]) -> list[str]:
    import numpy as np

    lengths = np.fromiter(map(len, sentences), np.int64, len(sentences))
    codes = np.frombuffer("".join(sentences).encode("utf-32-le", "surrogatepass"), "<u4")
    big = codes.tobytes().decode("utf-32-le", "surrogatepass")
    ends = np.cumsum(lengths)
    return [big[a:b] for a, b in zip((ends - lengths).tolist(), ends.tolist())]


def calibrate(realised: Any, target: float) -> float:
    """The magnitude whose realised change is ``target`` (secant steps; the change is ~linear)."""
    m = 0.1
    for _ in range(2):
        got = realised(m)
        m = min(1.0, m * target / got) if got > 0 else 1.0
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sentences", type=int, default=4000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--peer-venv", type=Path, default=DEFAULT_PEER_VENV)
    ap.add_argument("--quick", action="store_true", help="1,000 sentences, fewer repeats")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args()
    if args.quick:
        args.sentences, args.repeats = 1000, 3
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    os.environ.update({k: env[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")})

    sys.path.insert(0, str(HERE.parent))
    from common import run_metadata, time_it, write_json

    from perturbkit import perturbations

    sentences, source = corpus(args.sentences)
    floor = time_it(lambda: floor_codec(sentences), repeats=args.repeats)
    n, sample = len(sentences), sentences[:N_FIDELITY]
    rows, ratios = [], []
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "spec.json"
        spec.write_text(json.dumps({"sentences": sentences}))
        peer = Peer(__file__, ensure_peer_venv(args.peer_venv, PEER_PINS), spec, env)
        try:
            print(
                f"{n} sentences, {source}; nlpaug {peer.report['nlpaug']}; "
                f"floor {n / floor['median']:,.0f}/s"
            )
            print(
                f"{'perturbation':16s} {'magnitude':>9s} {'ours /s':>11s} {'nlpaug /s':>10s} "
                f"{'ratio':>7s} {'vs floor':>8s} {'change ours':>11s} {'nlpaug':>7s}"
            )
            for name in PAIRS:
                p = perturbations.get(name)
                target = peer.report[name]["change"]
                m = calibrate(lambda m, p=p: change(sample, p(sample, m, 0)), target)
                ours, theirs = interleave(
                    lambda p=p, m=m: p(sentences, m, 0),
                    lambda k=name: peer.time(k),
                    args.repeats,
                )
                ours_change = change(sample, p(sample, m, 0))
                ratio = theirs["median"] / ours["median"]
                ratios.append(ratio)
                row = {
                    "perturbation": name,
                    "peer": peer.report[name]["augmenter"],
                    "magnitude": m,
                    "ours": {**ours, "sentences_per_s": n / ours["median"], "change": ours_change},
                    "nlpaug": {**theirs, "sentences_per_s": n / theirs["median"], "change": target},
                    "ratio": ratio,
                    "ours_over_floor": ours["median"] / floor["median"],
                }
                rows.append(row)
                print(
                    f"{name:16s} {m:9.3f} {row['ours']['sentences_per_s']:11,.0f} "
                    f"{row['nlpaug']['sentences_per_s']:10,.0f} {ratio:6.1f}x "
                    f"{row['ours_over_floor']:7.1f}x {ours_change:11.3f} {target:7.3f}"
                )
        finally:
            peer.close()
    gmean = math.exp(sum(map(math.log, ratios)) / len(ratios))
    print(
        f"geometric mean ratio {gmean:.1f}x (target >= 10x on every pair: "
        f"{'met' if min(ratios) >= 10 else 'NOT met'})"
    )
    results = {
        "meta": {**run_metadata(), "nlpaug": peer.report["nlpaug"], "corpus": source},
        "config": vars(args) | {"peer_venv": str(args.peer_venv)},
        "floor": {**floor, "sentences_per_s": n / floor["median"]},
        "rows": rows,
        "geometric_mean_ratio": gmean,
        "min_ratio": min(ratios),
        "target": ">= 10x nlpaug sentences/s",
    }
    if not args.quick:
        print(f"wrote {write_json('modalities_text', results)}")
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        peer_serve(sys.argv[2])
    else:
        main()
