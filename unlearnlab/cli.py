"""The ``unlearnlab`` command: ``data``, ``run``, ``build``, ``grade`` and ``compare``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path


def cmd_data(args: argparse.Namespace) -> int:
    """Say where MNIST and Fashion-MNIST are, whether their files check out and how many images each split has."""
    from .data import DATASETS, DatasetNotFoundError, data_root, extracted_raw_dir, load_dataset, verify_files

    root = data_root(args.root)
    source = "--root" if args.root else "$UNLEARNLAB_DATA" if os.environ.get("UNLEARNLAB_DATA") else "cache folder"
    print(f"data root: {root} (from {source})")
    failed = False
    for dataset in args.datasets or list(DATASETS):
        title = DATASETS[dataset].title
        raw = extracted_raw_dir(args.root, dataset)
        if raw is None:
            try:
                load_dataset(dataset, train=True, root=args.root, download=not args.offline)
            except DatasetNotFoundError as err:
                print(err, file=sys.stderr)
                failed = True
                continue
            raw = extracted_raw_dir(args.root, dataset)
        print(f"{title}: files read from {raw}")
        status = verify_files(args.root, dataset)
        for name, state in status.items():
            print(f"  {name:26s} {state}")
        if any(state != "ok" for state in status.values()):
            print(f"some {title} files do not check out: replace them with the originals", file=sys.stderr)
            failed = True
            continue
        for train, label in ((True, "train"), (False, "test")):
            data = load_dataset(dataset, train=train, root=args.root, download=False)
            print(f"  {label:5s}: {len(data):,} images; per class {data.class_counts()}")
    return 1 if failed else 0


def cmd_run(args: argparse.Namespace) -> int:
    """Execute notebooks with papermill and write results.json and report.md."""
    from .course.run import default_notebooks, record_path, record_run, run_all

    paths = [Path(p) for p in args.notebooks] or default_notebooks()
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    results = run_all(paths, Path(args.out), args.profile, args.device, args.seed, args.timeout)
    failed = [name for name, r in results["notebooks"].items() if r["status"] != "ok"]
    print(f"wrote {args.out}/results.json and {args.out}/report.md ({results['total_seconds']:.0f} s)")
    if args.record:
        path = record_path(results["profile"])
        record_run(results, path)
        print(f"recorded {len(results['notebooks'])} notebook(s) at {results['commit']} in {path}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def cmd_build(args: argparse.Namespace) -> int:
    """Regenerate exercises/ from solutions/ and stamp the lecture notebooks of notebooks/."""
    from .course.build import BuildError, build, build_lectures
    from .course.expect import course_records, recorded_times, sync_recorded_runs
    from .course.notebooks import course_root

    root = course_root()
    lectures = [root / "notebooks" / Path(n).name for n in args.notebooks if Path(n).parent.name == "notebooks"]
    solutions = [Path(n).name for n in args.notebooks if Path(n).parent.name != "notebooks"]
    try:
        if solutions or not args.notebooks:
            written = build(root / "solutions", root / "exercises", solutions)
            print(f"wrote {len(written)} exercises to {root / 'exercises'}")
        if lectures or not args.notebooks:
            stamped = build_lectures(lectures or sorted((root / "notebooks").glob("*.ipynb")))
            print(f"stamped {len(stamped)} lecture notebooks in {root / 'notebooks'}")
        if sync_recorded_runs(recorded_times(course_records(root))):
            print("updated the recorded run times the package ships (unlearnlab/recorded_runs.json)")
    except BuildError as err:
        print(f"build failed: {err}", file=sys.stderr)
        return 1
    return 0


def cmd_grade(args: argparse.Namespace) -> int:
    """Grade submissions into a folder the TA names; exit 1 when any submission could not be graded."""
    from .course.grade import grade_all, write_csv
    from .course.sandbox import NO_SANDBOX_WARNING, bwrap_works
    from .engine import LOCAL, EngineError

    if not args.out and not args.csv:
        print("name an output folder with --out DIR (grades.csv is written there)", file=sys.stderr)
        return 2
    if args.leaderboard:
        return cmd_leaderboard(args)
    if args.scheduler == LOCAL and not bwrap_works():
        print(f"WARNING: {NO_SANDBOX_WARNING}", file=sys.stderr)
    csv_path = Path(args.csv) if args.csv else Path(args.out) / "grades.csv"
    try:
        rows = grade_all(
            [Path(p) for p in args.submissions],
            timeout=args.timeout,
            jobs=args.jobs,
            exercise=Path(args.exercise) if args.exercise else None,
            hidden=(csv_path.resolve().parent,),
            scheduler=args.scheduler,
            on_row=lambda finished: write_csv(finished, csv_path),  # the CSV grows as submissions finish
        )
    except EngineError as err:
        print(f"grading did not start: {err}", file=sys.stderr)
        return 2
    write_csv(rows, csv_path)
    for row in rows:
        flags = f" [review: {', '.join(row.flags)}]" if row.flags else ""
        print(
            f"{row.submission:30s} {row.total:3d}/{sum(row.max_points.values()):<3d} {' | '.join(row.feedback)}{flags}"
        )
    print(f"wrote {csv_path}")
    ungraded = [r.submission for r in rows if not r.graded]
    if ungraded or not rows:
        print(f"could not grade: {', '.join(ungraded) or 'no submissions found'}", file=sys.stderr)
    return 1 if ungraded or not rows else 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """The capstone submissions' methods scored like competition entries; write leaderboard.csv, .md, .json, .png."""
    from .course.leaderboard import SUBMISSION, leaderboard
    from .engine import EngineError

    try:
        board = leaderboard(
            [Path(p) for p in args.submissions],
            models=args.models,
            methods=args.methods,
            timeout=args.timeout,
            scheduler=args.scheduler,
            jobs=args.jobs,
        )
    except (EngineError, ValueError) as err:
        print(f"the leaderboard did not start: {err}", file=sys.stderr)
        return 2
    paths = board.write(args.out or Path(args.csv).parent)
    print(board.markdown())
    print(f"wrote {', '.join(map(str, paths))}")
    failed = [r.name.removeprefix(SUBMISSION) for r in board.result.rows if r.name.startswith(SUBMISSION) and r.error]
    if failed:
        print(f"submissions without a score (see their rows): {', '.join(failed)}", file=sys.stderr)
    return 1 if failed or not board.submissions else 0


def cmd_forgetting_quality(args: argparse.Namespace) -> int:
    """F of every method over K models a side; write forgetting_quality.json, .md and .png."""
    from .compare.forgetting import STUDIES, run_study
    from .config import for_profile, resolve
    from .engine import EngineError

    try:
        study = for_profile(STUDIES, resolve(args.profile))
        result = run_study(
            args.methods,
            args.profile,
            study=replace(study, models=args.models) if args.models else study,
            device=args.device,
            scheduler=args.scheduler,
            jobs=args.jobs,
            log=lambda text: print(text, file=sys.stderr),
        )
    except (KeyError, ValueError, EngineError) as err:
        print(f"compare: {err}", file=sys.stderr)
        return 2
    paths = result.write(args.out)
    print(result.markdown())
    print(f"wrote {', '.join(map(str, paths))}")
    return 0 if result.scored() else 1


def cmd_compare(args: argparse.Namespace) -> int:
    """Every method against retraining over seeds; write compare.json, compare.md and pareto.png."""
    from .compare import compare, write
    from .engine import EngineError

    if args.forgetting_quality:
        return cmd_forgetting_quality(args)

    try:
        result = compare(
            args.scenario,
            forget_classes=tuple(args.forget) if args.scenario == "class" else (),
            forget_fraction=args.fraction,
            methods=args.methods,
            seeds=args.seeds,
            profile=args.profile,
            ain=not args.no_ain,
            device=args.device,
            scheduler=args.scheduler,
            jobs=args.jobs,
            log=lambda text: print(text, file=sys.stderr),
        )
    except (KeyError, ValueError, EngineError) as err:
        print(f"compare: {err}", file=sys.stderr)
        return 2
    paths = write(result, args.out)
    print(result.markdown())
    print(f"wrote {', '.join(map(str, paths))}")
    failed = [r.method for r in result.rows if r.errors]
    if failed:
        print(f"methods with failed seeds (see their rows): {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one subcommand per job."""
    parser = argparse.ArgumentParser(prog="unlearnlab", description="The machine unlearning course's tools.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = sub.add_parser("data", help="find MNIST and Fashion-MNIST, check their files and count the images")
    data.add_argument(
        "--root", help="folder containing MNIST/raw and FashionMNIST/raw (default: $UNLEARNLAB_DATA or the cache)"
    )
    data.add_argument("--offline", action="store_true", help="never try to download")
    data.add_argument(
        "--dataset",
        dest="datasets",
        action="append",
        choices=["mnist", "fashion_mnist"],
        help="check only this data set (repeatable; default: all)",
    )
    data.set_defaults(func=cmd_data)

    run = sub.add_parser("run", help="execute the solutions with papermill; write results.json and report.md")
    run.add_argument("notebooks", nargs="*", help="notebooks to run (default: solutions/ and notebooks/)")
    run.add_argument("--profile", default="auto", choices=["auto", "quick", "full"])
    run.add_argument("--device", default="auto", help="auto, cpu or cuda")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--out", default="runs/latest", help="output folder (default: runs/latest)")
    run.add_argument("--timeout", type=int, default=None, help="seconds allowed per cell (default: none)")
    run.add_argument(
        "--record",
        action="store_true",
        help="also merge the run into benchmarks/results/course_<profile>.json (the README's and exercises' record)",
    )
    run.set_defaults(func=cmd_run)

    build = sub.add_parser("build", help="regenerate exercises/ from solutions/, stamp notebooks/")
    build.add_argument(
        "notebooks",
        nargs="*",
        help="solutions/NN_x.ipynb or notebooks/x.ipynb to build (default: all)",
    )
    build.set_defaults(func=cmd_build)

    grade = sub.add_parser("grade", help="grade submissions (nbval) and write points per question")
    grade.add_argument("submissions", nargs="+", help="submitted notebooks, or folders of them")
    grade.add_argument("--out", help="output folder for grades.csv (required unless --csv is given)")
    grade.add_argument("--csv", help="output CSV path (default: OUT/grades.csv)")
    grade.add_argument("--timeout", type=int, default=300, help="seconds allowed per cell (default: 300)")
    grade.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="local scheduler: worker processes, one submission each (default: cores / 2)",
    )
    grade.add_argument(
        "--scheduler",
        default="local",
        help="'local' (a Dask cluster of --jobs processes here) or a Dask scheduler's address, tcp://host:8786",
    )
    grade.add_argument("--exercise", help="the exercise notebook (default: from the submission)")
    grade.add_argument(
        "--leaderboard",
        action="store_true",
        help="score each 08 submission's Q3 method like a competition entry (forgetting quality F, accuracies, "
        "cost) over K seeds, beside the course's methods; writes leaderboard.csv, .md, .json and .png",
    )
    grade.add_argument("--models", type=int, help="with --leaderboard: K seeds a side (default: 32)")
    grade.add_argument("--methods", nargs="+", help="with --leaderboard: the course's reference methods (default: all)")
    grade.set_defaults(func=cmd_grade)

    cmp = sub.add_parser("compare", help="every unlearning method against retraining over seeds, with the noise band")
    cmp.add_argument("--scenario", default="class", choices=["class", "random"])
    cmp.add_argument(
        "--forget", type=int, nargs="+", default=[6], help="class scenario: the classes to forget (default: 6)"
    )
    cmp.add_argument("--fraction", type=float, default=0.1, help="random scenario: share of the training set to forget")
    cmp.add_argument("--methods", nargs="+", help="registry names (default: every method for the scenario)")
    cmp.add_argument(
        "--seeds", type=int, default=2, help="number of seeds 0..N-1 (default: 2; two or more give a band)"
    )
    cmp.add_argument("--profile", default="quick", choices=["auto", "quick", "full"])
    cmp.add_argument("--device", default="auto", help="auto, cpu or cuda")
    cmp.add_argument("--no-ain", action="store_true", help="skip the anamnesis index (relearning probes)")
    cmp.add_argument(
        "--forgetting-quality",
        action="store_true",
        help="score forgetting quality F (NeurIPS 2023 competition) over K small models a side, random forgetting",
    )
    cmp.add_argument("--models", type=int, help="with --forgetting-quality: K (default: 32 quick, 256 full)")
    cmp.add_argument(
        "--scheduler",
        help="run the zoo's models and the (method, seed) pairs as Dask tasks: 'local' (a cluster of --jobs "
        "processes here) or a scheduler's address, tcp://host:8786 (default: one after another in this process)",
    )
    cmp.add_argument(
        "--jobs", type=int, help="local scheduler: worker processes (default: one per core on a CPU, one on a GPU)"
    )
    cmp.add_argument("--out", default="runs/compare", help="output folder (default: runs/compare)")
    cmp.set_defaults(func=cmd_compare)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
