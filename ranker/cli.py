"""Command line for scripted users and pipelines: ``python -m ranker`` / ``pstudio-rank``.

Examples:
    pstudio-rank --db studio.db create faces ./faces --recursive
    pstudio-rank --db studio.db import-ir faces comparisons.csv
    pstudio-rank --db studio.db leaderboard faces --top 20
    pstudio-rank --db studio.db export faces --format json --out faces.json
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ranker.errors import StudioError
from ranker.results import DEFAULT_ORDER, LEADERBOARD_ORDERS

_ORDER_HELP = f"leaderboard order (default: {DEFAULT_ORDER}, the order every output shares)"

EXPORTS = ("json", "csv", "rankings", "comparisons")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pstudio-rank", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--db",
        default=os.environ.get("STUDIO_DB", "studio_data/studio.db"),
        help="the vote database (default: studio_data/studio.db, or $STUDIO_DB)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="list projects with image and vote counts")

    create = sub.add_parser("create", help="create a project from a folder of images")
    create.add_argument("name")
    create.add_argument("folder", type=Path)
    create.add_argument("--recursive", action="store_true", help="include sub-folders")
    create.add_argument("--instruction", default=None, help="the question shown above each pair")
    create.add_argument("--strategy", default="active", help="pair-selection strategy")
    create.add_argument("--preset", default="image_ranker", help="rating preset")
    create.add_argument("--budget", type=int, default=None, help="comparison budget")

    add = sub.add_parser("add", help="add a folder of images to a project")
    add.add_argument("name")
    add.add_argument("folder", type=Path)
    add.add_argument("--recursive", action="store_true")

    imp = sub.add_parser("import-ir", help="import Image Ranker's comparisons.csv (order kept)")
    imp.add_argument("name")
    imp.add_argument("csv", type=Path)

    imj = sub.add_parser("import-json", help="create a project from our JSON export")
    imj.add_argument("json", type=Path)
    imj.add_argument("--name", default=None)

    exp = sub.add_parser("export", help="export rankings, comparisons or the whole project")
    exp.add_argument("name")
    exp.add_argument("--format", choices=EXPORTS, default="json")
    exp.add_argument("--out", type=Path, default=None, help="file to write (default: stdout)")
    exp.add_argument("--order", choices=LEADERBOARD_ORDERS, default=None, help=_ORDER_HELP)

    nxt = sub.add_parser(
        "pairs", help="a labeler's open pairs, the one to answer first, then the look-ahead"
    )
    nxt.add_argument("name")
    nxt.add_argument("--labeler", required=True, help="who answers (votes are recorded so)")

    board = sub.add_parser("leaderboard", help="print the leaderboard")
    board.add_argument("name")
    board.add_argument("--top", type=int, default=20)
    board.add_argument("--order", choices=LEADERBOARD_ORDERS, default=None, help=_ORDER_HELP)
    return parser


def _export(project, fmt: str, order: str) -> str:
    from prefdata import imageranker_csv, project_json

    return {
        "json": lambda: project_json.export_json(project, order),
        "csv": lambda: project_json.export_csv(project, order),
        "rankings": lambda: imageranker_csv.export_ir_rankings(project),
        "comparisons": lambda: imageranker_csv.export_ir_comparisons(project),
    }[fmt]()


def _embed_new_images(project, db: Path) -> None:
    """A project with a model attached: embed its new images now (the model loaded from
    the local cache or the Hub), or print which wait and why. Imported here only: the
    engine itself never loads torch."""
    if project.attached_model is None or not project.images_without_features():
        return
    from model.project_loop import embed_on_intake

    done = embed_on_intake(project, Path(db).resolve().parent)
    label = project.attached_model.get("label") or project.attached_model["source"]
    print(done.summary(f"the attached model {label}"))


def run(args: argparse.Namespace) -> int:
    from prefdata import imageranker_csv, project_json
    from ranker.service import Studio

    studio = Studio(args.db)
    try:
        if args.command == "list":
            for row in studio.list_projects():
                project = studio.project(row.name)
                progress = project.progress()
                print(f"{row.name}\t{progress.images} images\t{progress.votes} votes")
        elif args.command in ("create", "add"):
            if args.command == "create":
                settings = {"strategy": args.strategy, "rating_preset": args.preset}
                if args.budget:
                    settings["budget"] = args.budget
                project = studio.create_project(args.name, args.instruction, **settings)
            else:
                project = studio.project(args.name)
            print(project.add_folder(args.folder, recursive=args.recursive).summary())
            _embed_new_images(project, args.db)
        elif args.command == "pairs":
            pairs, _ = studio.project(args.name).lookahead(args.labeler)
            for m in pairs:
                print(f"{m.pair_id}\t{m.left.path}\t{m.right.path}")
        elif args.command == "import-ir":
            text = _read(args.csv)
            counts = imageranker_csv.import_ir_comparisons(studio.project(args.name), text)
            print(f"imported {counts['votes']} votes, {counts['excluded']} exclusions")
        elif args.command == "import-json":
            project = project_json.import_json(studio, _read(args.json), args.name)
            print(
                f"created {project.name}: {len(project.images)} images, "
                f"{project.ratings.pool.n_votes} votes"
            )
            _embed_new_images(project, args.db)
        elif args.command == "export":
            text = _export(studio.project(args.name), args.format, args.order)
            if args.out:
                args.out.write_text(text, encoding="utf-8")
                print(f"wrote {args.out}")
            else:
                sys.stdout.write(text)
        elif args.command == "leaderboard":
            rows = studio.project(args.name).leaderboard(args.order)[: args.top]
            print("rank\tmu\tsigma\tW-L-T\tpath")
            for r in rows:
                flag = " (excluded)" if r["excluded"] else ""
                print(
                    f"{r['rank']}\t{r['mu']:.2f}\t{r['sigma']:.2f}\t"
                    f"{r['wins']}-{r['losses']}-{r['ties']}\t{r['path']}{flag}"
                )
    finally:
        studio.close()
    return 0


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise StudioError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise StudioError(f"{path} is not UTF-8 text") from exc


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return run(args)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
