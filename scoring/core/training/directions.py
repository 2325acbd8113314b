"""Experiments on directions the project had not tried (issue 19), judged by the rule fixed in
``docs/directions.md`` before their figures existed.

``python -m scoring.core.cli experiment usaugment|masks|ssl [--cv-seeds 0,1,2]`` cross-validates the
default recipe twice on the same patient-grouped folds: as it is (the baseline), and changed by the
direction:

* ``usaugment [--copies 2]``: every training clip of a fold adds ``--copies`` augmented copies
  (:mod:`scoring.core.training.augment`); test clips are never augmented.
* ``masks``: the read frames of every clip carry the pleural-line and vertical-artefact masks
  (:func:`scoring.core.features.handcrafted.artefact_masks`) as the backbone's second and third
  input channels.
* ``ssl``: every clip is described by the backbone pretrained self-supervised on the POCUS videos
  (:mod:`scoring.core.training.ssl`).

Both change the clip heads' 224-px view, the only input of the clip score the CV measures; frame
and 112-px summary features stay the clip's own. The command prints both CV blocks, the per-seed
accuracies side by side and the screening verdict, and writes them as JSON with ``--json FILE``.
It trains nothing that ships.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from scoring.core.features.featurizer import Featurizer
from scoring.core.features.handcrafted import artefact_masks
from scoring.core.features.preprocess import normalise_intensity, quantise
from scoring.core.features.recipe import Recipe
from scoring.core.inference.scorer import DEFAULT_WEIGHTS, load_bundle
from scoring.core.training import caches
from scoring.core.training.augment import augment_clip, draw, scan_mask
from scoring.core.training.caches import cached_views, content_sha256, feature_key, featurize_records
from scoring.core.training.cv import cv_splits, cv_summary, fit_with_noise_filter, seed_report
from scoring.core.training.datasets import DEFAULT_DATA, ClipRecord, pocus_records
from scoring.core.training.finetune import state_tag
from scoring.core.training.run import training_records
from scoring.core.training.ssl import pretrain_backbone

Feats = dict[str, np.ndarray]
#: Frames per clip, as the training command featurises them.
MAX_FRAMES = 120
#: Bump when the augmentation changes (cache key of the copies' features).
AUGMENT_VERSION = "usaugment-1"
#: Bump when the masks change (cache key of the masked descriptors).
MASKS_VERSION = "masks-1"
#: Bump when the self-supervised pretraining changes (cache key of its state and descriptors).
SSL_VERSION = "ssl-1"


def log(msg: str) -> None:
    """Progress on stderr (stdout stays for results)."""
    print(msg, file=sys.stderr, flush=True)


def _store() -> Path:
    """The experiments' cache folder (``~/.cache/lusweb/features-aug``), created on first use;
    read at call time because tests point the cache elsewhere."""
    d = caches.CACHE_ROOT / "features-aug"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _hires_variants(records: Sequence[ClipRecord], recipe: Recipe, variants: Sequence[object],
                    describe: Callable[[np.ndarray, str, int], np.ndarray], what: str,
                    progress: Callable[[str], None] | None) -> list[list[np.ndarray]]:
    """Per record, one hires descriptor per variant: ``describe(view, clip_sha256, j)`` of the
    clip's 224-px canvas (float [T,S,S] in [0,1], before the gain normalisation) for variant ``j``,
    cached in ``~/.cache/lusweb/features-aug`` per recipe, variant (its JSON) and clip content."""
    if not recipe.hires_size:
        raise ValueError(f"the recipe has no hires view for {what}")
    cfg = recipe.preprocess()
    d = _store()
    out: list[list[np.ndarray]] = []
    t0 = time.time()
    for i, r in enumerate(records):
        sha = content_sha256(r.path)
        row = []
        for j, variant in enumerate(variants):
            key = hashlib.sha1(json.dumps([feature_key(recipe, MAX_FRAMES), variant, sha]).encode())
            f = d / f"{key.hexdigest()[:24]}.npy"
            if not f.exists():
                _, u8h = cached_views(r.path, cfg, recipe.hires_size, MAX_FRAMES)
                np.save(f, describe(u8h.astype(np.float32) / 255.0, sha, j))
            row.append(np.load(f))
        out.append(row)
        if progress and (i + 1) % 25 == 0:
            progress(f"{what}: {i + 1}/{len(records)} clips x {len(variants)} ({time.time() - t0:.0f}s)")
    return out


def augmented_hires(records: Sequence[ClipRecord], recipe: Recipe, copies: int, fz: Featurizer,
                    progress: Callable[[str], None] | None = None) -> list[list[np.ndarray]]:
    """Per record, the hires descriptors of its ``copies`` augmented copies (the clip's content
    seeds its draws, so a clip gets the same copies in every run)."""
    intensity = recipe.preprocess().intensity

    def describe(x: np.ndarray, sha: str, copy: int) -> np.ndarray:
        aug = augment_clip(x, draw(int(sha[:8], 16), copy), scan_mask(x))
        return fz.hires([normalise_intensity(quantise(aug), intensity)])[0]

    return _hires_variants(records, recipe, [[AUGMENT_VERSION, c] for c in range(copies)], describe,
                           "usaugment copies", progress)


def masked_hires(records: Sequence[ClipRecord], recipe: Recipe, fz: Featurizer,
                 progress: Callable[[str], None] | None = None) -> list[np.ndarray]:
    """Per record, the hires descriptor whose read frames carry the pleural-line and
    vertical-artefact masks as their second and third channels."""
    intensity = recipe.preprocess().intensity

    def describe(x: np.ndarray, _sha: str, _j: int) -> np.ndarray:
        view = normalise_intensity(x, intensity)
        return fz.hires([view], channels=[artefact_masks(view)])[0]

    return [row[0] for row in _hires_variants(records, recipe, [MASKS_VERSION], describe, "masks", progress)]


def ssl_hires(records: Sequence[ClipRecord], recipe: Recipe, data: str | None, steps: int = 300,
              progress: Callable[[str], None] | None = None) -> list[np.ndarray]:
    """Per record, the hires descriptor of the backbone pretrained self-supervised on the POCUS
    videos (:mod:`scoring.core.training.ssl`; the pretrained state is cached per recipe, steps
    and video list)."""
    if not recipe.hires_size:
        raise ValueError("the recipe has no hires view for ssl")
    cfg = recipe.preprocess()
    root = Path(data) if data else DEFAULT_DATA
    videos = [r for r in pocus_records(root / "pocus") if "pocus_videos" in Path(r.path).parts]
    if not videos:
        raise ValueError(f"no POCUS videos under {root / 'pocus'} to pretrain on")
    d = _store()
    key = hashlib.sha1(json.dumps([feature_key(recipe, MAX_FRAMES), SSL_VERSION, steps,
                                   sorted(content_sha256(r.path) for r in videos)]).encode()).hexdigest()[:24]
    state_file = d / f"ssl-{key}.pt"
    if state_file.exists():
        state = torch.load(state_file, map_location="cpu", weights_only=True)
    else:
        clips = [cached_views(r.path, cfg, recipe.hires_size, MAX_FRAMES)[1] for r in videos]
        if progress:
            progress(f"ssl: pretraining on {len(clips)} POCUS videos")
        state = pretrain_backbone(clips, recipe, seed=0, steps=steps)
        torch.save(state, state_file)
    fz = Featurizer(recipe, backbone_state=state)

    def describe(x: np.ndarray, _sha: str, _j: int) -> np.ndarray:
        return fz.hires([normalise_intensity(x, cfg.intensity)])[0]

    variant = [SSL_VERSION, steps, state_tag(state)]
    return [row[0] for row in _hires_variants(records, recipe, [variant], describe, "ssl features", progress)]


@dataclass(frozen=True)
class Arm:
    """A challenger: ``copies`` (per clip, hires descriptors of augmented copies that join the
    training folds) and/or ``hires`` (per clip, the descriptor that replaces the clip's own, in
    training and test alike)."""

    name: str
    copies: Sequence[Sequence[np.ndarray]] | None = None
    hires: Sequence[np.ndarray] | None = None

    def features(self, feats: Sequence[Feats]) -> list[Feats]:
        """The clips as this arm sees them."""
        if self.hires is None:
            return list(feats)
        return [{**f, "hires": h} for f, h in zip(feats, self.hires, strict=True)]


def training_set(feats: Sequence[Feats], copies: Sequence[Sequence[np.ndarray]], tr: np.ndarray
                 ) -> tuple[list[Feats], np.ndarray]:
    """A fold's training clips ``tr`` followed by their augmented copies (each copy keeps its
    clip's frame and summary features and replaces the hires descriptor); returns the feature
    dicts and, for each, the index of the clip it comes from (labels and patients follow it)."""
    rows = [feats[int(i)] for i in tr]
    origin = [int(i) for i in tr]
    for i in tr:
        for h in copies[int(i)]:
            rows.append({**feats[int(i)], "hires": h})
            origin.append(int(i))
    return rows, np.asarray(origin, int)


def cross_validate_pair(feats: Sequence[Feats], arm: Arm, y: np.ndarray, findings: np.ndarray,
                        groups: Sequence[str], recipe: Recipe, seeds: Sequence[int],
                        k: int) -> dict[str, dict[str, object]]:
    """The baseline's and the challenger's CV blocks (``cv_summary``), fold for fold the same test
    clips; they differ only in what ``arm`` changes."""
    y = np.asarray(y, int)
    every = np.ones(len(y), bool)
    arms = {"baseline": (list(feats), [[] for _ in feats]),
            arm.name: (arm.features(feats), arm.copies or [[] for _ in feats])}
    reports: dict[str, list[dict[str, object]]] = {name: [] for name in arms}
    for seed in seeds:
        outs: dict[str, dict[int, dict[str, object]]] = {name: {} for name in arms}
        for tr, te in cv_splits(y, groups, every, k, seed):
            for name, (arm_feats, arm_copies) in arms.items():
                rows, origin = training_set(arm_feats, arm_copies, tr)
                b, _ = fit_with_noise_filter(rows, y[origin], findings[origin], [groups[i] for i in origin], recipe,
                                             seed, frame_heads=False)
                outs[name].update({int(i): b.predict(arm_feats[int(i)]) for i in te})
        for name in arms:
            reports[name].append(seed_report(y, np.arange(len(y)), outs[name]))
        log(f"seed {seed}: accuracy " + ", ".join(f"{name} {reports[name][-1]['accuracy']:.3f}" for name in arms))
    n_patients = len(set(groups))
    return {name: cv_summary(r, seeds, k, len(y), n_patients) for name, r in reports.items()}


def screening(cv: dict[str, dict[str, object]], challenger: str) -> dict[str, object]:
    """Step 1 of ``docs/directions.md``: does the challenger's mean accuracy beat the baseline's?"""
    base = float(cv["baseline"]["accuracy"]["mean"])  # type: ignore[index]
    value = float(cv[challenger]["accuracy"]["mean"])  # type: ignore[index]
    return {"baseline_accuracy": base, "challenger_accuracy": value, "passes": value > base}


def experiment_parser() -> argparse.ArgumentParser:
    """Arguments of ``experiment``."""
    p = argparse.ArgumentParser(prog="experiment", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("direction", choices=("usaugment", "masks", "ssl"))
    p.add_argument("--data", help="folder holding covid-blues/; default ../shared/data")
    p.add_argument("--copies", type=int, default=2, help="usaugment: augmented copies of each training clip")
    p.add_argument("--cv-seeds", default="0,1,2")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--limit", type=int, default=0, help="use only the first N clips (smoke tests)")
    p.add_argument("--ssl-steps", type=int, default=300, help="ssl: pretraining steps (300 is the recipe; fewer "
                   "for smoke tests only)")
    p.add_argument("--json", default="", help="write the result here")
    return p


def experiment_main(argv: Sequence[str] | None = None) -> int:
    """Run one direction's pre-registered comparison on the default recipe."""
    args = experiment_parser().parse_args(list(argv) if argv is not None else None)
    if args.direction == "usaugment" and args.copies < 1:
        raise SystemExit("--copies: at least one augmented copy per training clip")
    if args.direction == "ssl" and args.ssl_steps < 1:
        raise SystemExit("--ssl-steps: at least one pretraining step (the recipe's is 300)")
    try:
        return _run(args, argv)
    except ValueError as exc:  # a data set that cannot run this direction: say so, no traceback
        raise SystemExit(f"experiment {args.direction}: {exc}") from exc


def _run(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    recipe = load_bundle(DEFAULT_WEIGHTS).recipe
    records = training_records(args.data, with_pocus=False, limit=args.limit)
    t0 = time.time()
    fz = Featurizer(recipe)
    feats = featurize_records(records, recipe, fz=fz, max_frames=MAX_FRAMES, log=log)
    if args.direction == "usaugment":
        arm = Arm("usaugment", copies=augmented_hires(records, recipe, args.copies, fz, progress=log))
    elif args.direction == "masks":
        arm = Arm("masks", hires=masked_hires(records, recipe, fz, progress=log))
    else:
        arm = Arm("ssl", hires=ssl_hires(records, recipe, args.data, args.ssl_steps, progress=log))
    log(f"features ready in {time.time() - t0:.0f}s")
    y = np.array([r.score for r in records])
    findings = np.stack([r.findings_vector() for r in records])
    seeds = [int(s) for s in args.cv_seeds.split(",") if s.strip()]
    cv = cross_validate_pair(feats, arm, y, findings, [r.patient for r in records], recipe, seeds, args.folds)
    result = {"direction": args.direction, "copies": args.copies if arm.copies else 0, "recipe": recipe.to_dict(),
              "ssl_steps": args.ssl_steps if args.direction == "ssl" else 0,
              "cv": cv, "screening": screening(cv, arm.name), "seconds": round(time.time() - t0, 1),
              "command": "python -m scoring.core.cli experiment " + " ".join(argv or sys.argv[1:])}
    for name in ("baseline", arm.name):
        block = cv[name]
        print(name + ": " + ", ".join(f"{m} {block[m]['mean']:.3f} ± {block[m]['sd']:.3f}"  # type: ignore[index]
                                     for m in ("accuracy", "within1", "spearman", "qwk", "ece")))
    s = result["screening"]
    print(f"screening: mean accuracy {s['challenger_accuracy']:.3f} vs {s['baseline_accuracy']:.3f} -> "  # type: ignore[index]
          f"{'passes' if s['passes'] else 'does not pass'}")  # type: ignore[index]
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0
