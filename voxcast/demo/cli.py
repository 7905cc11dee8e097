"""`voxcast demo`: write the synthetic PET/CT study."""

from __future__ import annotations

import argparse
import json
import time

from voxcast.demo.phantom import SIZES


def register(commands, serve_commands) -> None:
    parser = commands.add_parser(
        "demo",
        help="write a synthetic PET/CT study as DICOM files",
        description="Write a synthetic whole-body PET/CT study (CT in HU, PET in Bq/ml with SUVbw tags) "
        "under OUT/CT and OUT/PT. The same --size and --seed always give the same files.",
    )
    parser.add_argument("--out", required=True, help="folder to write into (created if missing)")
    parser.add_argument(
        "--size", choices=list(SIZES), default="small", help="sampling: small, medium or large"
    )
    parser.add_argument("--seed", type=_seed, default=0, help="varies noise, vessels, patient (default 0)")
    parser.add_argument("--json", action="store_true", help="print the study summary as one JSON object")
    parser.set_defaults(func=_run)


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def _run(args) -> int:
    from voxcast.cli import VoxcastCliError
    from voxcast.demo.study import write_demo_study

    start = time.perf_counter()
    try:
        study = write_demo_study(args.out, size=args.size, seed=args.seed)
    except OSError as exc:  # an occupied, unwritable or misnamed --out: one line, no traceback
        raise VoxcastCliError(str(exc)) from exc
    elapsed = time.perf_counter() - start
    summary = study.summary()
    if args.json:
        print(json.dumps(summary | {"seconds": round(elapsed, 3)}))
        return 0
    for series in summary["series"]:
        geometry = series["volume"]
        slices, rows, columns = geometry["shape"]
        spacing = "x".join(f"{s:g}" for s in geometry["spacing_mm"])
        print(
            f"{series['modality']:<2} {series['files']:>4} files  {columns}x{rows}x{slices}  "
            f"spacing {spacing} mm  {series['stored_units']:<4}  {series['dir']}  "
            f"series {series['series_uid']}"
        )
    print(
        f"study {study.study_uid}  patient {study.patient.name} ({study.patient.patient_id})  {elapsed:.1f} s"
    )
    return 0
