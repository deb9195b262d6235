"""`avatar` command line: create avatars, list sliders, benchmark, warm caches.

Bad input exits with status 2 and one line `error: ...`; nothing is written in that case.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from avatarclip_core.errors import UserInputError


def _describe_config(cls) -> str:
    from avatarclip_core.config import describe_fields

    lines = ["config keys (--set KEY=VALUE):"]
    for key, type_name, default in describe_fields(cls):
        lines.append(f"  {key} ({type_name}, default {default!r})")
    return "\n".join(lines)


def _add_job_flags(args: argparse.Namespace, overrides: dict[str, str]) -> None:
    """--motion, --seconds, --loop, --root, --seed, --fbx, --formats, --profile and --face-shapes are
    shorthands for config keys shared by every avatar job."""
    if args.motion is not None:
        overrides["motion.name"] = args.motion
    for flag, key in (("seconds", "motion.seconds"), ("loop", "motion.loop"), ("root", "export.root_motion")):
        if getattr(args, flag, None) is not None:
            overrides[key] = str(getattr(args, flag))
    if args.seed is not None:
        overrides["seed"] = str(args.seed)
    if args.fbx:
        overrides["export.fbx"] = "true"
    if getattr(args, "formats", None):
        overrides["export.formats"] = args.formats
    if getattr(args, "profile", None):
        overrides["export.profile"] = args.profile
    if getattr(args, "face_shapes", None):
        overrides["export.face_shapes"] = args.face_shapes


def _describe_sliders_config() -> str:
    from avatar_studio.pipelines.sliders import SlidersJobConfig

    return ("--set NAME=VALUE sets a body slider (see `avatar sliders`); --set a.b=VALUE sets a config key.\n"
            + _describe_config(SlidersJobConfig))


def _describe_text_config() -> str:
    try:
        from avatar_studio.pipelines.text import TextJobConfig
    except ImportError as exc:  # a broken optional stack must not break `avatar --help`
        return f"(config keys unavailable: {exc})"
    return _describe_config(TextJobConfig)


def _split_sets(pairs: list[str]) -> tuple[dict[str, str], dict[str, float]]:
    """`--set` takes config keys (dotted: motion.fps=24) and body sliders (plain: height=0.9)."""
    from avatarclip_core.config import parse_override

    overrides: dict[str, str] = {}
    sliders: dict[str, float] = {}
    for pair in pairs:
        key, value = parse_override(pair)
        if "." in key:
            overrides[key] = value
        else:
            try:
                sliders[key] = float(value)
            except ValueError:
                raise UserInputError(f"slider '{key}' needs a number, got {value!r}") from None
    return overrides, sliders


class _TqdmProgress:
    def __init__(self, quiet: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=100, unit="%", disable=quiet, file=sys.stderr,
                        bar_format="{desc:<28} {percentage:3.0f}%|{bar:30}| {elapsed}")

    def __call__(self, stage: str, fraction: float, message: str = "") -> None:
        self.bar.set_description_str(stage)
        self.bar.update(round(fraction * 100) - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def cmd_body(args: argparse.Namespace) -> int:
    from avatar_studio.pipelines.sliders import load_sliders_config, run_sliders_job

    overrides, sliders = _split_sets(args.set or [])
    _add_job_flags(args, overrides)
    config = load_sliders_config(args.preset, overrides)
    progress = _TqdmProgress(args.quiet)
    try:
        out = run_sliders_job(sliders, config, Path(args.output), force=args.force, progress=progress)
    finally:
        progress.close()
    _print_job_report(out)
    return 0


def cmd_text(args: argparse.Namespace) -> int:
    from avatar_studio.pipelines.text import load_text_config, run_text_job

    overrides, sliders = _split_sets(args.set or [])
    if sliders:
        raise UserInputError(f"`avatar text` takes config keys only (dotted names); got slider(s) {', '.join(sliders)}")
    _add_job_flags(args, overrides)
    if args.clip:
        model, _, tag = args.clip.partition(":")
        overrides["clip.model"] = model
        if tag:
            overrides["clip.pretrained"] = tag
    if args.clip_checkpoint:
        overrides["clip.checkpoint"] = args.clip_checkpoint
    config = load_text_config(args.preset, overrides)
    progress = _TqdmProgress(args.quiet)
    try:
        out = run_text_job(args.shape or "", args.appearance, config, Path(args.output), force=args.force,
                           progress=progress)
    finally:
        progress.close()
    _print_job_report(out)
    return 0


def _print_job_report(out: Path) -> None:
    """A described motion's closest known motions, the clip as written, the job's warnings (stderr), then
    the folder."""
    params = json.loads((out / "params.json").read_text())
    matches = ((params.get("motion_source") or {}).get("matches") or {}).get("matches", [])
    if matches:
        print("motion matches: " + ", ".join(f"{m['generator']} ('{m['label']}') {m['score']:.2f}" for m in matches),
              file=sys.stderr)
    animation = (params.get("export") or {}).get("animation")
    if animation:  # what an engine will list: e.g. "motion clip: walk_loop, 4 s, 121 frames, in_place"
        print(f"motion clip: {animation['name']}, {animation['seconds']:g} s, {animation['frames']} frames, "
              f"{animation['root_motion']}", file=sys.stderr)
    for warning in params.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    print(out)


def cmd_train(args: argparse.Namespace) -> int:
    if args.what == "shape":
        from avatarclip_core.config import load_config
        from avatarclip_core.shape.config import ShapeConfig
        from avatarclip_core.shape.train import train_shape_artifacts

        overrides, _ = _split_sets(args.set or [])
        config = load_config(ShapeConfig, args.preset, {k.removeprefix("shape."): v for k, v in overrides.items()},
                             section="text.shape")
        out = train_shape_artifacts(config, Path(args.output) if args.output else None)
        print(out)
    elif args.what == "motion":
        from avatarclip_core.config import load_config
        from avatarclip_core.motion.gen_config import MotionTrainConfig
        from avatarclip_core.motion.train import train_motion_models

        overrides, _ = _split_sets(args.set or [])
        overrides = {k.removeprefix("motion_train."): v for k, v in overrides.items()}
        if args.vposer:
            overrides["vposer"] = args.vposer
        config = load_config(MotionTrainConfig, args.preset, overrides, section="text.motion_train")
        progress = _TqdmProgress(False)
        try:
            out = train_motion_models(config, Path(args.output) if args.output else None, progress=progress)
        finally:
            progress.close()
        print(out)
    elif args.what == "face2param":
        from avatar_studio.pipelines.photo import load_photo_config

        overrides, _ = _split_sets(args.set or [])
        if args.prior_photos:  # the translator's fits prior (Eq. 11-12) from these photos, not engine renders
            overrides["train.prior_photos"] = args.prior_photos
            overrides.setdefault("oneshot.prior", "fits")  # the photos are only read by the fits prior
        overrides = {k.removeprefix("photo."): v for k, v in overrides.items()}
        engine_flags = {"spec": args.engine_spec, "command": args.engine_command, "url": args.engine_url,
                        "name": args.engine_name}
        if any(engine_flags.values()):
            overrides["engine_kind"] = "external"
            overrides.update({f"engine_external.{k}": v for k, v in engine_flags.items() if v})
        config = load_photo_config(args.preset, overrides)
        progress = _TqdmProgress(False)
        try:
            if args.imitator and args.identity:
                raise UserInputError("train face2param: choose one of --imitator and --identity")
            if args.identity:
                from face2param.methods.identity_surrogate import train_identity_surrogate

                out = train_identity_surrogate(config, Path(args.output) if args.output else None, progress=progress)
            elif args.imitator:
                from face2param.imitator.train import train_imitator

                out = train_imitator(config, out_dir=Path(args.output) if args.output else None, progress=progress)
            else:
                from face2param.translator.train import train_translator

                out = train_translator(config, Path(args.output) if args.output else None, progress=progress)
        finally:
            progress.close()
        print(out)
    return 0


def cmd_sliders(args: argparse.Namespace) -> int:
    from avatarclip_core.body import BodyConfig, create_body_model
    from avatarclip_core.config import apply_overrides

    overrides, _ = _split_sets(args.set or [])
    body = create_body_model(apply_overrides(BodyConfig(), {k.removeprefix("body."): v for k, v in overrides.items()}))
    specs = [s for s in body.sliders() if not args.group or s.group == args.group]
    if args.json:
        print(json.dumps([s.__dict__ for s in specs], indent=1))
    else:
        for s in specs:
            print(f"{s.name:40s} [{s.minimum:g}, {s.maximum:g}] default {s.default:g}  {s.group}  {s.description}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from avatar_studio.bench import ALL_SECTIONS, run_bench

    sections = tuple(args.only.split(",")) if args.only else ALL_SECTIONS
    unknown = set(sections) - set(ALL_SECTIONS)
    if unknown:
        raise UserInputError(f"unknown bench section(s) {', '.join(sorted(unknown))}: choose from {', '.join(ALL_SECTIONS)}")
    results = run_bench(repeats=args.repeats, output=Path(args.output), sections=sections)
    print(json.dumps(results, indent=2))
    return 0


def cmd_warmup(args: argparse.Namespace) -> int:
    """Build the default body model once so later runs load it from the data folder's cache."""
    from avatarclip_core.body import create_body_model

    body = create_body_model()
    print(f"body model ready: {body.name}, {len(body.joint_names)} joints, {len(body.sliders())} sliders")
    if args.face_assets:
        _warm_face_assets(args.quiet)
    return 0


def _warm_face_assets(quiet: bool) -> None:
    """The photo fit's asset renders for every skin and hair colour, cached (face2param.methods.slots)."""
    from face2param.config import Face2ParamConfig
    from face2param.engines.registry import load_engine
    from face2param.methods.slots import prefill_slot_descriptors

    config = Face2ParamConfig()
    progress = _TqdmProgress(quiet)
    try:
        count = prefill_slot_descriptors(load_engine(config), config.slots, config.faces.regions,
                                         lambda fraction, message: progress("face asset renders", fraction, message))
    finally:
        progress.close()
    print(f"face asset renders ready: {count} colour combinations")


def cmd_serve(args: argparse.Namespace) -> int:
    """The web app (Gradio page + REST API) and, by default, an embedded worker process."""
    from web.app import launch

    launch(host=args.host, port=args.port, start_worker=not args.no_worker, public_url=args.public_url,
           worker_concurrency=args.concurrency)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """A worker in the foreground (production: one per GPU/CPU machine, same broker settings)."""
    from workers.worker import run_worker

    run_worker(args.queues, args.concurrency, loglevel=args.loglevel)
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    """Jobs through the same job API the web app uses (needs a running worker)."""
    from workers.api import get_job_api

    api = get_job_api()
    if args.action == "list":
        for st in api.list(limit=args.limit):
            print(f"{st.job_id}  {st.kind:8s} {st.state:9s} {st.progress * 100:5.1f}%  {st.stage}  {st.created}")
    elif args.action == "status":
        print(json.dumps(api.status(args.job_id).to_dict(), indent=2))
    elif args.action == "cancel":
        print("cancelled" if api.cancel(args.job_id) else "not cancelled (already finished?)")
    elif args.action == "prune":
        age = parse_age(args.older_than) if args.older_than else None
        # --older-than: jobs and uploads that old (temp leftovers as configured); without: the
        # configured retention (AVATAR_RETENTION_*), what `avatar serve` runs every interval
        done = api.sweep(dry_run=args.dry_run, **({"jobs_older_than": age, "uploads_older_than": age} if age else {}))
        if done.skipped:
            print(f"nothing removed: {done.skipped}")
            return 0
        ages = args.older_than or describe_retention(api.settings)
        print(f"{'would remove' if args.dry_run else 'removed'} {done.jobs} finished job(s) and "
              f"{done.uploads} upload(s) older than {ages}, {done.temp} temp entries: {done.bytes / 1e6:.1f} MB")
    elif args.action == "usage":
        from workers.retention import format_usage

        print(format_usage(api.disk_usage()))
    return 0


def parse_age(text: str) -> float:
    """'30d', '12h', '90m', '45s' or plain seconds -> seconds (prune --older-than)."""
    from workers.settings import SettingsError, parse_age as parse

    try:
        return parse(text)
    except SettingsError as exc:
        raise UserInputError(str(exc)) from None


def describe_retention(settings) -> str:
    def age(seconds: float) -> str:
        if not seconds:
            return "never"
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if seconds >= size and seconds % size == 0:
                return f"{seconds / size:g}{unit}"
        return f"{seconds:g}s"

    return f"jobs {age(settings.retention_jobs)}, uploads {age(settings.retention_uploads)}"


class _LazyEpilogParser(argparse.ArgumentParser):
    """An epilog computed when help is printed, so listing heavy configs costs nothing otherwise."""

    epilog_fn = None

    def format_help(self) -> str:
        if self.epilog_fn is not None:
            self.epilog = self.epilog_fn()
        return super().format_help()


def _add_export_arguments(parser: argparse.ArgumentParser) -> None:
    from avatarclip_core.export.profiles import PROFILES

    parser.add_argument("--formats", metavar="LIST", help="files to write, e.g. glb,vrm,fbx,bvh (default auto: glb,bvh "
                        "plus fbx where Blender's bpy is installed; avatar.glb is always written)")
    parser.add_argument("--profile", choices=list(PROFILES), help="export profile: bone names, rest pose, "
                        "influences, root motion (default generic; unity: Mixamo names, T-pose, 4 influences)")
    parser.add_argument("--face-shapes", choices=["arkit", "none"], help="ARKit's 52 face blend shapes and 15 "
                        "visemes as morph targets on the avatar's head (default arkit)")


def add_motion_arguments(parser: argparse.ArgumentParser, motion_help: str) -> None:
    """--motion and how its clip is shaped for games (motion/game_clip.py)."""
    from avatarclip_core.config import limits

    parser.add_argument("--motion", help=motion_help)
    parser.add_argument("--seconds", type=float, metavar="S", help="clip length in seconds (motion.seconds; "
                        "default 0: as made): a loop repeats whole cycles, a one-shot clip is re-timed")
    parser.add_argument("--loop", choices=list(limits.CLIP_LOOPS), help="loop the clip, last pose = first "
                        "(motion.loop; default auto: locomotion cycles and idles)")
    parser.add_argument("--root", choices=["root_motion", "in_place"], help="root motion (the clip moves the "
                        "character) or in place (horizontal travel removed); export.root_motion, default: the profile's")


def add_job_arguments(parser: argparse.ArgumentParser, presets: list[str], set_help: str) -> None:
    """The options every avatar-writing command shares (body, text, create): preset, overrides, seed,
    export files, output folder."""
    parser.add_argument("--preset", default="preview", choices=presets or None, help="config preset (configs/)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help=set_help)
    parser.add_argument("--seed", type=int, help="random seed (recorded in provenance.json)")
    parser.add_argument("--fbx", action="store_true", help="also write avatar.fbx (needs pip install '.[fbx]')")
    _add_export_arguments(parser)
    parser.add_argument("-o", "--output", required=True, help="job folder to create")
    parser.add_argument("--force", action="store_true", help="replace an existing output folder")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    from avatarclip_core.config import preset_names

    parser = _LazyEpilogParser(
        prog="avatar", description="Game-ready 3D avatars from sliders, text and photos.",
        epilog="Data folder: $AVATAR_DATA_DIR (default ./data). `avatar COMMAND --help` shows each command's options.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    body = sub.add_parser(
        "body", help="rigged avatar from named sliders (+ a built-in or described motion)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write a job folder: avatar.glb, params.json, preview.png, provenance.json "
                    "(+ motion.bvh, motion.npz with --motion; avatar.fbx with --fbx).",
        )
    body.epilog_fn = _describe_sliders_config  # torch is imported only when help is shown
    add_motion_arguments(body, "built-in motion (idle, wave, walk) or a description, e.g. \"raise both arms\" (generated)")
    add_job_arguments(body, preset_names(), "slider or config override NAME=VALUE (repeatable)")
    body.set_defaults(func=cmd_body)

    text = sub.add_parser(
        "text", help="avatar from text (AvatarCLIP): --shape and/or --appearance",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Shape from the code-book queried by text; appearance sculpted and textured with CLIP "
                    "(NeuS) when CLIP weights are available; rigged, optionally animated.",
        )
    text.epilog_fn = _describe_text_config  # imports the text stack only when help is shown
    text.add_argument("--shape", help='body description, e.g. "a tall and fat man"')
    text.add_argument("--appearance", help='look, e.g. "Iron Man" (needs CLIP weights)')
    add_motion_arguments(text, "built-in motion (idle, wave, walk) or a description, e.g. \"raise both arms\" (generated)")
    text.add_argument("--clip", help="open_clip MODEL:TAG, e.g. ViT-B-32:openai (downloads once where online)")
    text.add_argument("--clip-checkpoint", help="local CLIP weights file")
    add_job_arguments(text, preset_names(), "config override, e.g. neus.iterations=200 (repeatable)")
    text.set_defaults(func=cmd_text)

    train = sub.add_parser("train", help="rebuild trained artifacts (shape: VAE + code-book; motion: pose VAE, "
                                         "pose code-book, motion VAE; face2param: one-shot translator, "
                                         "or with --imitator the imitator of an engine)")
    train.add_argument("what", choices=["shape", "motion", "face2param"])
    train.add_argument("--vposer", help="motion: a human-body-prior VPoser v2 checkpoint to use as the pose VAE")
    train.add_argument("--preset", default="preview", choices=preset_names() or None)
    train.add_argument("--set", action="append", metavar="KEY=VALUE")
    train.add_argument("--imitator", action="store_true",
                       help="face2param: train the imitator G + landmark regressor on an engine's renders "
                            "(what iterative fitting of a render-only engine needs; knobs: --set imitator.*)")
    train.add_argument("--identity", action="store_true",
                       help="face2param: fit the identity surrogate of dlib's network (the iterative method's "
                            "identity term; knobs: --set identity_surrogate.*; -o names the .npz)")
    train.add_argument("--engine-spec", help="face2param: an external engine's parameter spec JSON")
    train.add_argument("--engine-command", help='face2param: its render command, e.g. "python render.py {params} {out}"')
    train.add_argument("--engine-url", help="face2param: or its HTTP render endpoint (POST params JSON -> PNG)")
    train.add_argument("--engine-name", help="face2param: name of the external engine (default: the spec's file name)")
    train.add_argument("--prior-photos", metavar="DIR",
                       help="face2param: face photos whose iterative fits give the one-shot translator's "
                            "facial prior (default: engine renders through the face analysis)")
    train.add_argument("-o", "--output", help="artifact folder (default: the data folder)")
    train.set_defaults(func=cmd_train)

    sliders = sub.add_parser("sliders", help="list the body model's sliders and ranges")
    sliders.add_argument("--group", help="only this group (e.g. phenotype, cheek, nose)")
    sliders.add_argument("--set", action="append", metavar="body.KEY=VALUE", help="body config override")
    sliders.add_argument("--json", action="store_true")
    sliders.set_defaults(func=cmd_sliders)

    bench = sub.add_parser("bench", help="measure body forward, rendering and GLB export; write bench.json")
    bench.add_argument("--repeats", type=int, default=5)
    bench.add_argument("-o", "--output", default="bench.json")
    bench.add_argument("--only", help="comma-separated sections: body,export,render,queue,text,motion,photo,photo_memory,web,cli,"
                       "create (default all)")
    bench.set_defaults(func=cmd_bench)

    serve = sub.add_parser("serve", help="web app + REST API on the embedded default (starts a worker too)")
    serve.add_argument("--host", default=os.environ.get("AVATAR_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("AVATAR_PORT", "7860")))
    serve.add_argument("--no-worker", action="store_true", help="don't start the embedded worker (run `avatar worker` elsewhere)")
    serve.add_argument("--concurrency", type=int, default=1, help="job processes of the embedded worker")
    serve.add_argument("--public-url", help="base URL for download links when behind a proxy")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run a job worker in the foreground (AVATAR_BROKER_URL selects the broker)")
    worker.add_argument("--queues", default=None, help="comma-separated: cpu,gpu (default AVATAR_QUEUES or both)")
    worker.add_argument("--concurrency", type=int, default=None, help="job processes (default 1)")
    worker.add_argument("--loglevel", default="INFO")
    worker.set_defaults(func=cmd_worker)

    jobs = sub.add_parser("jobs", help="list, inspect, cancel or prune jobs; the data folder's disk usage")
    jobs.add_argument("action", choices=["list", "status", "cancel", "prune", "usage"])
    jobs.add_argument("job_id", nargs="?")
    jobs.add_argument("--limit", type=int, default=20)
    jobs.add_argument("--older-than", default=None,
                      help="prune: jobs finished longer ago than this (30d, 12h, 90m, seconds), their folders and "
                           "uploads (default: AVATAR_RETENTION_JOBS / _UPLOADS; temp files: AVATAR_RETENTION_TEMP)")
    jobs.add_argument("--dry-run", action="store_true", help="prune: only report what would be removed")
    jobs.set_defaults(func=cmd_jobs)

    try:
        from avatar_studio.cli.photo import register as register_photo_commands
    except ImportError as exc:  # a broken optional stack must not break the other commands
        logging.getLogger(__name__).debug("photo commands unavailable: %s", exc)
    else:
        register_photo_commands(sub, preset_names())

    from avatar_studio.cli.create import register as register_create_command

    register_create_command(sub, preset_names())

    warm = sub.add_parser("warmup", help="build and cache the default body model (first run takes minutes)")
    warm.add_argument("--face-assets", action="store_true",
                      help="also render the photo fit's hair, beard and glasses options for every skin and hair "
                           "colour (about a minute once; a photo then never waits ~1 s for its colours' first use)")
    warm.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    warm.set_defaults(func=cmd_warmup)
    return parser


# The line each command prints first, at once, before its heavy imports (stderr, so stdout stays the
# command's output; -q silences it): a command that loads torch and models says something within a
# second instead of nothing for many (`avatar photo` starts its progress bar itself).
STARTING_NOTICES = {
    "body": "loading the body model", "text": "loading the text-to-avatar models",
    "train": "loading the training libraries", "sliders": "loading the body model",
    "bench": "loading the benchmarks", "warmup": "loading the body model (building its cache on a first run)",
    "serve": "starting the web app", "worker": "starting the worker", "jobs": "opening the job store",
    "face-engine": "loading the face engine", "eval": "loading the face analysis and the engine",
}


def _starting_notice(args: argparse.Namespace) -> None:
    notice = STARTING_NOTICES.get(getattr(args, "command", None) or "")
    if notice and not getattr(args, "quiet", False):
        print(f"avatar {args.command}: {notice} ...", file=sys.stderr, flush=True)


def _check_utf8_arguments(args: argparse.Namespace) -> None:
    """Bytes that are not UTF-8 on the command line reach Python as lone surrogates (surrogateescape)
    and would fail deep inside a tokenizer or a JSON write: one error line (exit 2) instead."""
    for name, value in vars(args).items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, str) and any("\ud800" <= c <= "\udfff" for c in item):
                raise UserInputError(f"the {name.replace('_', ' ')} argument is not valid UTF-8 text")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("WARP_QUIET", "1")
    if getattr(args, "command", None) == "jobs" and args.action in ("status", "cancel") and not args.job_id:
        parser.error(f"jobs {args.action} needs a JOB_ID")
    try:
        _check_utf8_arguments(args)
        _starting_notice(args)
        return args.func(args)
    except UserInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def console_main() -> None:
    """The `avatar` console script and `python -m avatar_studio.cli`: main(), then a hard exit.

    Once a command has returned, its files are written and its job folder renamed into place; what is
    left is the interpreter's teardown of torch, Warp, mediapipe & co. (2.8-3.3 s measured after a photo
    job). Like the worker (workers/worker.py), this skips it: the atexit handlers still run (temporary
    folders, multiprocessing, logging), stdout and stderr are flushed, and the exit status is kept
    (0, 1 for a batch with failures, 2 for bad input). main() itself returns, for in-process callers."""
    try:
        status = main()
    except SystemExit as exc:  # argparse (--help, a usage error) or a command's own sys.exit
        if exc.code is not None and not isinstance(exc.code, int):
            raise  # a message to print: the ordinary way
        status = exc.code or 0
    _hard_exit(status)


def _hard_exit(status: int) -> None:
    import atexit

    atexit._run_exitfuncs()  # logging.shutdown, tempfile and multiprocessing finalizers, registered by libraries
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`avatar ... | head`): nothing more to say
            status = status or 120  # what Python's own exit gives a flush that fails
    os._exit(status)


if __name__ == "__main__":
    console_main()
