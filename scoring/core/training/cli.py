"""``train``: the training command line (``python -m scoring.core.cli train``, ``manage.py lus_train``).

``--arch lite0`` (the default weights): ``--mode frozen`` fits the heads on the frozen backbone's
features; ``--mode finetune|distill`` adapts the backbone first
(:mod:`scoring.core.training.finetune`). Both end in :func:`scoring.core.training.run.finish_training`.
``--arch mcrfnet|reg-stn`` trains that network end to end (:mod:`scoring.core.training.nets_run`),
cross-validated on the same folds.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np
import torch

from scoring.core.features.recipe import Recipe
from scoring.core.training import cascade_run, finetune, nets_run
from scoring.core.training.nets import NET_AGGREGATORS, NET_ARCHS, NetRecipe
from scoring.core.training.run import finish_training, training_records


def train_parser() -> argparse.ArgumentParser:
    """Arguments of ``train``."""
    d = Recipe()
    p = argparse.ArgumentParser(prog="lus_train", description="Train LUS scoring heads (frozen recipe).")
    p.add_argument("--data", help="folder holding covid-blues/ (and pocus/); default ../shared/data")
    p.add_argument("--arch", choices=("lite0", *NET_ARCHS, "cascade"), default="lite0",
                   help="lite0: frozen EfficientNet-Lite0 + heads (default weights); mcrfnet, reg-stn: trained end to "
                        "end; cascade: stage-one noise filter, then lite0, mcrfnet and reg-stn vote")
    p.add_argument("--out", default="", help="weights file (default scoring/weights/default.pt, or "
                   "scoring/weights/architectures/<arch>.pt for the networks)")
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
    nets = p.add_argument_group("mcrfnet / reg-stn")
    nets.add_argument("--epochs", type=int, default=NetRecipe.epochs)
    nets.add_argument("--clip-frames", type=int, default=NetRecipe.clip_frames, help="frames kept per clip")
    nets.add_argument("--net-aggregator", choices=NET_AGGREGATORS, default="",
                      help="frames -> clip: mean or the learned uninorm (default: uninorm for reg-stn, mean for mcrfnet)")
    nets.add_argument("--epoch-frames", type=int, default=NetRecipe.epoch_frames, help="frames drawn per clip and epoch")
    return p


def train_main(argv: Sequence[str] | None = None) -> int:
    """Featurise, cross-validate (patient-grouped, repeated), fit on all clips, save weights."""
    args = train_parser().parse_args(list(argv) if argv is not None else None)
    args.argv = list(argv) if argv is not None else sys.argv[1:]
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(2)
    if args.arch in (*NET_ARCHS, "cascade"):
        args.out = args.out or str(nets_run.WEIGHTS_DIR / f"{args.arch}.pt")
        if args.with_pocus:
            raise SystemExit("--with-pocus: the networks train on COVID-BLUES only (POCUS clips have no six-class "
                             "label)")
        if args.arch == "cascade":
            # The cascade's members as committed (docs/architecture-comparison.md): mean-aggregated.
            return cascade_run.main(args, {a: nets_run.recipe_from_args(args, a, aggregator="mean") for a in NET_ARCHS})
        return nets_run.main(args)
    args.out = args.out or "scoring/weights/default.pt"
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
