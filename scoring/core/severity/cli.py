"""``lus_train_severity``: ablation on the synthetic cohort and on COVID-BLUES, then default weights.

    python manage.py lus_train_severity --covid-blues ../shared/data/covid-blues --seeds 0 1 2 3 4

Prints both ablation tables (patient-grouped CV; Xue et al. Table 4 rows), fits the temperature
that calibrates MA-CLR's risk of a severe course on its out-of-fold predictions (all fold seeds
pooled; :mod:`scoring.core.severity.calibration`) and prints its out-of-fold ECE, trains MA-CLR
on all COVID-BLUES patients and writes ``scoring/weights/severity.pt`` with the calibrator; its
metadata carries the tables, the calibration figures, the class rule, the training patients and
the frame-scorer version its features need.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from patients.imaging.core.reader import read_clip
from scoring.core.inference.scorer import Scorer, load_scorer
from scoring.core.severity.bundle import TrainConfig, save_bundle
from scoring.core.severity.calibration import Calibration, calibrate
from scoring.core.severity.features import score_with_features, zone_feature
from scoring.core.severity.nets import PatientSample
from scoring.core.severity.risk import SEVERITY_CLASSES
from scoring.core.severity.synth import ZONES_12, synthetic_cohort
from scoring.core.severity.training import KINDS, ablation_markdown, cross_validate, cv_table, oof_predictions, train
from scoring.core.training import covid_blues

WEIGHTS = Path(__file__).resolve().parents[2] / "weights" / "severity.pt"
BLUE6 = ("R1", "R2", "R3", "L1", "L2", "L3")


def covid_blues_samples(root: Path, scorer: Scorer, log: Callable[[str], None] = print) -> list[PatientSample]:
    """One sample per patient: zone features from the frame scorer, expert zone scores, clinical record."""
    rows = covid_blues.clinical_rows(root)
    by_patient: dict[str, dict[str, covid_blues.CovidBluesClip]] = {}
    for clip in covid_blues.clips(root):
        if not clip.second:  # the first clip of each zone, as the platform keeps
            by_patient.setdefault(clip.patient, {})[clip.zone] = clip
    samples = []
    t0 = time.perf_counter()
    for n, (patient, zones) in enumerate(sorted(by_patient.items(), key=lambda kv: int(kv[0]))):
        ordered = [zones[z] for z in BLUE6 if z in zones]
        scored = score_with_features(scorer, [read_clip(c.path).frames for c in ordered])
        feats = {c.zone: zone_feature(r, f) for c, (r, f) in zip(ordered, scored, strict=True)}
        samples.append(PatientSample(
            zone_features=feats, clinical=covid_blues.clinical_record(rows[patient]),
            label=covid_blues.severity_class(rows[patient]), zone_labels={c.zone: c.score for c in ordered},
            patient=patient,
        ))
        if n % 10 == 9:
            log(f"  features of {n + 1}/{len(by_patient)} patients ({time.perf_counter() - t0:.0f} s)")
    return samples


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lus_train_severity", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--covid-blues", type=Path, help="COVID-BLUES folder (clips, severity.csv, clinical CSV)")
    parser.add_argument("--synthetic-patients", type=int, default=200)
    # Five fold seeds: the calibration's ECE pools their out-of-fold predictions (42 patients a seed
    # leave an ECE over 10 bins at the mercy of chance; see scoring.core.severity.calibration).
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--synthetic-seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=120)
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    parser.add_argument("--weights", default=None, help="frame-scorer weights (default weights if omitted)")
    parser.add_argument("--no-save", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    cfg = TrainConfig(epochs=args.epochs)
    torch.set_num_threads(1)  # tiny networks: threads cost more than they give
    tables: dict[str, Any] = {}

    print(f"synthetic cohort: {args.synthetic_patients} patients, {args.folds}-fold CV, seeds {args.synthetic_seeds}")
    synth = synthetic_cohort(n_patients=args.synthetic_patients, seed=11)
    tables["synthetic"] = cross_validate(synth, ZONES_12, kinds=args.kinds, folds=args.folds,
                                         seeds=args.synthetic_seeds, cfg=cfg)
    print(ablation_markdown(tables["synthetic"], f"Synthetic cohort ({len(synth)} patients)"))

    if args.covid_blues is None:
        print("no --covid-blues folder: not training default weights", file=sys.stderr)
        return 0
    scorer = load_scorer(args.weights)
    print(f"COVID-BLUES features with frame scorer {scorer.version}")
    samples = covid_blues_samples(args.covid_blues, scorer)
    counts = np.bincount([s.label for s in samples], minlength=4)
    print("classes: " + ", ".join(f"{c} {n}" for c, n in zip(SEVERITY_CLASSES, counts, strict=True)))
    kinds = list(dict.fromkeys([*args.kinds, "ma_clr"]))  # the served kind is always calibrated
    oof = oof_predictions(samples, BLUE6, kinds=kinds, folds=args.folds, seeds=args.seeds, cfg=cfg)
    tables["covid_blues"] = cv_table(np.asarray([s.label for s in samples]), oof)
    print(ablation_markdown(tables["covid_blues"], f"COVID-BLUES ({len(samples)} patients)"))
    cal = calibrate(oof["ma_clr"], np.asarray([s.label for s in samples]), [s.patient for s in samples])
    print(calibration_text(cal))
    if args.no_save:
        return 0
    final = train("ma_clr", samples, BLUE6, TrainConfig(epochs=args.epochs, seed=args.seeds[0]))
    meta = {
        "architecture": "MA-CLR: DSA-MIL (zones) + clinical encoder, projected, classifier on [u, v]",
        "classes": list(SEVERITY_CLASSES),
        "class_rule": covid_blues.__doc__,
        "zone_feature": "clip probs (4) + findings (6) + temporal mean of frame-scorer frame features",
        "frame_scorer_version": scorer.version,
        "training_patients": [s.patient for s in samples],
        "class_counts": counts.tolist(),
        "ablation": tables,
        "cv": {"folds": args.folds, "seeds": args.seeds, "grouping": "patient"},
        "config": cfg.__dict__,
        "command": "python manage.py lus_train_severity " + " ".join(argv or sys.argv[1:]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    version = save_bundle(final, args.out, meta, calibration=cal.as_dict())
    print(f"wrote {args.out} ({version})")
    print(json.dumps({"version": version}, indent=None))
    return 0


def calibration_text(cal: Calibration) -> str:
    """The calibration figures as the command prints them."""
    seeds = ", ".join(f"{e:.3f}" for e in cal.ece_per_seed)
    return (f"risk of a severe course (MA-CLR, out of fold, {cal.n_predictions} predictions of {cal.n_patients} "
            f"patients): temperature {cal.temperature:.2f}; ECE ({cal.bins} bins) {cal.ece:.3f} calibrated "
            f"(per fold seed {seeds}; a perfectly calibrated predictor would show {cal.chance_ece:.3f} by chance), "
            f"{cal.ece_uncalibrated:.3f} uncalibrated; Brier {cal.brier:.3f} ({cal.brier_uncalibrated:.3f} "
            f"uncalibrated); severe/non-severe accuracy {cal.severe_accuracy:.3f}")


if __name__ == "__main__":
    raise SystemExit(main())
