"""`avatar create`: one avatar from a photo (face), body words, look words and a motion (the create job),
registered on the `avatar` parser by avatar_studio.cli.main."""
from __future__ import annotations

import argparse
from pathlib import Path

from avatarclip_core.errors import UserInputError


def cmd_create(args: argparse.Namespace) -> int:
    from avatar_studio.cli.main import _add_job_flags, _print_job_report, _TqdmProgress
    from avatarclip_core.config import parse_override

    if args.photo is not None and not Path(args.photo).is_file():
        raise UserInputError(f"no photo file {args.photo}")
    overrides = dict(parse_override(pair) for pair in (args.set or []))
    _add_job_flags(args, overrides)
    progress = _TqdmProgress(args.quiet)
    progress("loading the avatar pipeline", 0.0)  # the first line within a second, before the heavy imports
    try:
        from avatar_studio.pipelines.create import load_create_config, run_create_job

        config = load_create_config(args.preset, overrides)
        out = run_create_job(Path(args.photo) if args.photo else None, args.body, args.look, config,
                             Path(args.output), force=args.force, progress=progress)
    finally:
        progress.close()
    _print_job_report(out)
    return 0


def register(sub, presets: list[str]) -> None:
    from avatar_studio.cli.main import add_job_arguments, add_motion_arguments

    create = sub.add_parser(
        "create", help="one avatar from everything: --photo (face), --body and --look words, --motion",
        description="Write a job folder with one rigged, animated avatar: the photo's fitted face, the body "
                    "from the body words, hair/beard/glasses/colours and an outfit from the look words.")
    create.add_argument("--photo", help="a face photo (JPEG/PNG): decides the face, skin tone, gender and age")
    create.add_argument("--body", help='body words, e.g. "a very tall heavy man"')
    create.add_argument("--look", help='look words, e.g. "grey hair, glasses, red jacket, blue jeans, white sneakers"')
    add_motion_arguments(create, "built-in motion (idle, wave, walk) or a description (generated)")
    add_job_arguments(create, presets, "config override, e.g. export.profile=unity (repeatable)")
    create.set_defaults(func=cmd_create)
