"""`avatar photo`, `avatar face-engine` and `avatar eval photo`: the photo -> game-parameters commands,
registered on the `avatar` parser by avatar_studio.cli (kept here so that module stays small)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from avatarclip_core.config.limits import PHOTO_METHODS as METHODS
from avatarclip_core.errors import UserInputError



def _config(args: argparse.Namespace):
    from avatarclip_core.config import parse_override
    from avatar_studio.pipelines.photo import load_photo_config

    overrides = dict(parse_override(pair) for pair in (args.set or []))
    if getattr(args, "method", None):
        overrides["method"] = args.method
    if getattr(args, "seed", None) is not None:
        overrides["seed"] = str(args.seed)
    if getattr(args, "fbx", False):
        overrides["export.fbx"] = "true"
    if getattr(args, "formats", None):
        overrides["export.formats"] = args.formats
    if getattr(args, "profile", None):
        overrides["export.profile"] = args.profile
    return load_photo_config(args.preset, overrides)


def _fixed(pairs: list[str] | None) -> dict[str, str]:
    """--fix KEY=VALUE pairs -> {key: value}; the names and values are checked by the fit (one line each)."""
    fixed: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UserInputError(f"--fix needs KEY=VALUE, e.g. --fix gender=female, got {pair!r}")
        fixed[key.strip()] = value.strip()
    return fixed


def cmd_photo(args: argparse.Namespace) -> int:
    from avatar_studio.cli.main import _TqdmProgress

    fixed = _fixed(args.fix)
    if len(args.photos) > 1 or Path(args.photos[0]).is_dir():
        return _photo_batch(args, fixed)
    if not Path(args.photos[0]).exists():  # before the heavy imports: a typo is answered at once, not in 2-5 s
        raise UserInputError(f"image file not found: {args.photos[0]}")
    from avatar_studio.pipelines.photo_batch import ForkedAnalysis

    analysed = ForkedAnalysis(args.photos[0])  # forked before the heavy imports and any thread: see its doc
    progress = _TqdmProgress(args.quiet)
    progress("loading the photo pipeline", 0.0)  # the first line within a second, before the heavy imports
    try:
        from avatar_studio.pipelines.photo import run_photo_job

        out = run_photo_job(Path(args.photos[0]), _config(args), Path(args.output), force=args.force,
                            progress=progress, fixed=fixed, analysed=analysed)
    finally:
        analysed.close()
        progress.close()
    params = json.loads((out / "params.json").read_text())
    for warning in params.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    print(out)
    return 0


def _photo_batch(args: argparse.Namespace, fixed: dict[str, str]) -> int:
    """Several photos or folders: OUT/<photo>/params.json each (+ face.png / avatar.glb on request) and
    OUT/summary.json listing the failures; exit status 1 when any photo failed."""
    from tqdm import tqdm

    bar = tqdm(total=0, unit="photo", disable=args.quiet, file=sys.stderr, desc="loading the photo pipeline")
    bar.refresh()  # the first line within a second, before the heavy imports
    try:
        from avatar_studio.pipelines.photo_batch import BatchFiles, collect_photos, run_photo_batch

        photos = collect_photos(args.photos)
        bar.reset(total=len(photos))
        bar.set_description_str("analysing and fitting")

        def on_photo(done: int, total: int, photo: str, error: str) -> None:
            if error:
                bar.write(f"failed: {photo}: {error}", file=sys.stderr)
            bar.update(1)

        summary = run_photo_batch(photos, _config(args), Path(args.output), force=args.force,
                                  files=BatchFiles(face_png=args.face_png, avatar_glb=args.glb),
                                  processes=args.processes, fixed=fixed, on_photo=on_photo)
    finally:
        bar.close()
    report = summary.to_json()
    print(f"{report['succeeded']} of {report['photos']} photos in {report['seconds']:.1f} s "
          f"({report['photos_per_s']} photos/s); {len(summary.failed)} failed", file=sys.stderr)
    print(summary.output / "summary.json")
    return 1 if summary.failed else 0


def cmd_face_engine(args: argparse.Namespace) -> int:
    """The bundled engine's parameter spec (for game integration), a render, or a rigged avatar."""
    from face2param.engines import EngineParams
    from face2param.engines.registry import load_engine

    engine = load_engine(_config(args))
    if args.action == "spec":
        document = engine.spec.to_json_schema() if args.schema else engine.spec.to_json()
        text = json.dumps(document, indent=1) + "\n"
        if args.output:
            Path(args.output).write_text(text)
        else:
            sys.stdout.write(text)
        return 0
    if not args.params or not args.output:
        raise UserInputError(f"face-engine {args.action} needs --params PARAMS.json and -o OUTPUT")
    path = Path(args.params)
    if not path.is_file():
        raise UserInputError(f"no parameter file {path}")
    try:
        params = EngineParams.from_json(path.read_text()).validated(engine.spec)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserInputError(f"{path} is not a JSON parameter file ({exc})") from None
    if args.action == "render":
        from PIL import Image

        from face2param.methods.fit import as_numpy_image

        Image.fromarray(as_numpy_image(engine.render(params, args.size))).save(args.output)
    else:
        from avatarclip_core.export import write_glb

        write_glb(engine.build_avatar(params), Path(args.output))
    print(args.output)
    return 0


def cmd_eval_photo(args: argparse.Namespace) -> int:
    from face2param.evaluation.methods_eval import evaluate_photo_methods

    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise UserInputError(f"unknown method(s) {', '.join(unknown)}: choose from {', '.join(METHODS)}")
    summary = evaluate_photo_methods(Path(args.dir), Path(args.output), methods=methods, config=_config(args),
                                     force=args.force, people_dir=Path(args.people) if args.people else None,
                                     recovery_samples=args.recovery_samples)
    print(json.dumps(summary, indent=1, default=str))
    return 0


def register(sub, preset_names: list[str]) -> None:
    """Add the photo commands to the `avatar` sub-command parser."""
    presets = preset_names or None
    photo = sub.add_parser("photo", help="game-engine parameters + rigged avatar from a face photo (Face-to-Parameter)",
                           description="One photo: writes params.json (engine sliders in [0,1] and asset choices), "
                                       "face.png, avatar.glb (rigged full body) and provenance.json into -o. "
                                       "Several photos or a folder (a batch): one sub-folder of -o per photo with "
                                       "params.json and provenance.json (--face-png, --glb add those files) and "
                                       "-o/summary.json listing failed photos with their reason; a bad photo never "
                                       "stops the batch (exit status 1 when any failed).")
    photo.add_argument("photos", nargs="+", metavar="PHOTO_OR_FOLDER",
                       help="photos with a face (JPEG, PNG, WebP, TIFF, ...) or folders of them")
    photo.add_argument("--face-png", action="store_true", help="batch: also write face.png for each photo")
    photo.add_argument("--glb", action="store_true", help="batch: also write avatar.glb for each photo")
    photo.add_argument("--processes", type=int, default=None,
                       help="batch: face-analysis processes beside the fitting one (default: cores - 1, none on 2 cores; "
                            "0: analyse in this process)")
    photo.add_argument("--method", choices=METHODS, default=None, help="default: the preset's (auto)")
    photo.add_argument("--preset", default="preview", choices=presets)
    photo.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override, e.g. iterative.iterations=100")
    photo.add_argument("--fix", action="append", metavar="KEY=VALUE",
                       help="correct a detected attribute or choose a slot, e.g. --fix gender=female --fix "
                            "hair_style=long (keys: gender, age_band, skin_tone, hair_colour, hair_length, beard, "
                            "moustache, glasses and the engine's slots; `avatar face-engine spec` lists slot options)")
    photo.add_argument("--seed", type=int)
    photo.add_argument("--fbx", action="store_true")
    from avatar_studio.cli.main import _add_export_arguments

    _add_export_arguments(photo)
    photo.add_argument("-o", "--output", default="photo_avatar")
    photo.add_argument("--force", action="store_true")
    photo.add_argument("-q", "--quiet", action="store_true")
    photo.set_defaults(func=cmd_photo)

    engine = sub.add_parser("face-engine", help="the bundled avatar engine: parameter spec / JSON schema, render, avatar")
    engine.add_argument("action", choices=["spec", "render", "avatar"])
    engine.add_argument("--schema", action="store_true", help="spec: a JSON Schema for params.json instead of the spec")
    engine.add_argument("--params", help="render/avatar: a params.json (as `avatar photo` writes)")
    engine.add_argument("--size", type=int, default=512)
    engine.add_argument("--preset", default="preview", choices=presets)
    engine.add_argument("--set", action="append", metavar="KEY=VALUE")
    engine.add_argument("-o", "--output")
    engine.set_defaults(func=cmd_face_engine)

    evaluate = sub.add_parser("eval", help="evaluation reports")
    what = evaluate.add_subparsers(dest="what", required=True)
    photo_eval = what.add_parser("photo", help="every photo method against the mean face: landmarks, identity, "
                                               "parameter recovery; report.json + index.html")
    photo_eval.add_argument("--dir", required=True, help="folder of face photos")
    photo_eval.add_argument("--people", help="folder with one sub-folder per person (identity separation)")
    photo_eval.add_argument("--methods", default="mean,iterative,oneshot")
    photo_eval.add_argument("--recovery-samples", type=int, default=20)
    photo_eval.add_argument("--preset", default="preview", choices=presets)
    photo_eval.add_argument("--set", action="append", metavar="KEY=VALUE")
    photo_eval.add_argument("-o", "--output", required=True)
    photo_eval.add_argument("--force", action="store_true")
    photo_eval.set_defaults(func=cmd_eval_photo)
