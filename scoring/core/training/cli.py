"""``train``: the training command line (``python -m scoring.core.cli train``, ``manage.py lus_train``).

``--mode frozen`` (the default weights) fits the heads on the frozen backbone's features;
``--mode finetune|distill`` adapts the backbone first (:mod:`scoring.core.training.finetune`).
Both end in :func:`scoring.core.training.run.finish_training`.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np
import torch

from scoring.core.features.recipe import Recipe
from scoring.core.training import finetune
from scoring.core.training.run import finish_training, training_records


def train_parser() -> argparse.ArgumentParser:
    """Arguments of ``train``."""
    d = Recipe()
    p = argparse.ArgumentParser(prog="lus_train", description="Train LUS scoring heads (frozen recipe).")
    p.add_argument("--data", help="folder holding covid-blues/ (and pocus/); default ../shared/data")
    p.add_argument("--out", default="scoring/weights/default.pt")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cv-seeds", default="0,1,2", help="comma-separated seeds of the repeated CV ('' to skip)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--mode", choices=("frozen", "finetune", "distill"), default="frozen")
    p.add_argument("--size", type=int, default=d.size)
    p.add_argument("--aggregator", default=d.aggregator)
    p.add_argument("--clip-c", type=float, default=d.clip_c)
    p.add_argument("--ridge-alpha", type=float, default=d.ridge_alpha)
    p.add_argument("--noise-filter", type=int, default=d.noise_filter)
    p.add_argument("--hires-size", type=int, default=d.hires_size,
                   help="canvas of the clip heads' second view (0: clip heads on the frame features only)")
    p.add_argument("--hires-c", type=float, default=d.hires_c)
    p.add_argument("--members", default=",".join(d.members),
                   help="the three voting members (hr:<taps>, lr_all, lr_cnn, ridge)")
    p.add_argument("--with-pocus", action="store_true", help="add scored POCUS clips to every training fold")
    p.add_argument("--limit", type=int, default=0, help="use only the first N clips (smoke tests)")
    p.add_argument("--version", default="", help="version string (default: derived)")
    return p


def train_main(argv: Sequence[str] | None = None) -> int:
    """Featurise, cross-validate (patient-grouped, repeated), fit on all clips, save weights."""
    args = train_parser().parse_args(list(argv) if argv is not None else None)
    args.argv = list(argv) if argv is not None else sys.argv[1:]
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(2)
    if args.mode != "frozen":
        return finetune.main(args)
    members = tuple(m.strip() for m in args.members.split(",") if m.strip())
    if args.aggregator == "ensemble" and len(members) != 3:
        raise SystemExit(f"--members: the voting ensemble needs exactly three members, got {list(members)}")
    if not args.hires_size and any(m.startswith("hr:") for m in members):
        raise SystemExit("--members: hr:* members need a hires view; pass --hires-size > 0 or other members")
    recipe = Recipe(size=args.size, aggregator=args.aggregator, clip_c=args.clip_c,
                    ridge_alpha=args.ridge_alpha, noise_filter=args.noise_filter,
                    hires_size=args.hires_size, hires_c=args.hires_c, members=members)
    return finish_training(args, recipe, training_records(args.data, args.with_pocus, args.limit))


if __name__ == "__main__":
    raise SystemExit(train_main())
