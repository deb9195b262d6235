"""One entry point for an avatar job's motion: a built-in procedural clip by name (idle, wave,
walk) or, for any other text, a motion generated from that text (AvatarCLIP's motion half:
pose code-book query -> motion-VAE latent optimisation, `motion.generate.text_to_motion`).

`motion.name` carries either; the job checks it before any work (`check_motion_request`) and builds
it once the avatar's skeleton exists (`build_motion`), then shapes it for games (`game_clip.game_clip`:
motion.seconds, motion.loop, a name that says what it is).

A generated motion is checked against the semantic signature of the generator its text matched
(`signatures.does_what_it_says`: a "sit down" must end seated). The motion VAE smooths quick motions
(a clap's hands, a nod, a jog's flight), so one can fail; then, with motion_gen.quality_check=fallback,
the job uses that generator's procedural clip instead and says so in its warnings and in
params.json (`motion.quality_check`); "warn" keeps the generated motion with the warning.
"""
from __future__ import annotations

from avatarclip_core.body.types import Motion, Skeleton
from avatarclip_core.motion.gen_config import MotionGenConfig
from avatarclip_core.motion.procedural import BUILTIN_MOTIONS, MotionConfig, UnknownMotionError, make_motion


def is_builtin(name: str) -> bool:
    return name in BUILTIN_MOTIONS


def check_motion_request(motion: MotionConfig, generate: MotionGenConfig) -> None:
    """Cheap checks at the job boundary: fails before the body model loads."""
    if not motion.name:
        return
    if is_builtin(motion.name):
        if motion.fps <= 0 or motion.cycles < 1 or motion.speed <= 0:
            raise UnknownMotionError("motion needs fps > 0, cycles >= 1 and speed > 0")
        return
    from avatarclip_core.motion.generate import check_motion_text

    check_motion_text(motion.name)
    if generate.top_k < 1 or generate.iterations < 0:
        raise UnknownMotionError("motion_gen needs top_k >= 1 and iterations >= 0")
    if motion.on_unknown == "fail":  # before the body loads or an appearance is sculpted
        from avatarclip_core.motion.matching import check_on_unknown, match_text

        check_on_unknown(match_text(motion.name, generate), motion.on_unknown)


def build_motion(skeleton: Skeleton, motion: MotionConfig, generate: MotionGenConfig, scorer=None,
                 progress=None) -> tuple[Motion | None, dict | None]:
    """The clip for `motion.name` on `skeleton` and, for a generated one, what produced it
    (method, reference poses, losses, vocabulary matches and `warnings` for the job's list); (None,
    None) when no motion is asked for. An out-of-vocabulary text with motion.on_unknown=fail raises
    matching.MotionOutOfVocabularyError.

    scorer: a CLIP ImageTextScorer, or None; generate.query_method "auto" uses it only when it is a
    real CLIP (the offline sentence-encoder query otherwise)."""
    if not motion.name:
        return None, None
    from avatarclip_core.motion.game_clip import feet_settler, game_clip

    settle = feet_settler(skeleton)  # as the clip was settled: the built-ins always, generated ones with ground_feet
    if is_builtin(motion.name):
        clip, info, generator = _builtin(skeleton, motion), {"method": "builtin", "name": motion.name}, motion.name
    else:
        from avatarclip_core.motion.generate import text_to_motion
        from avatarclip_core.motion.matching import check_on_unknown, match_text

        match = match_text(motion.name, generate)
        check_on_unknown(match, motion.on_unknown)
        clip, info = text_to_motion(motion.name, skeleton, generate, scorer=scorer, progress=progress, match=match)
        # named after what it is: the matched generator; an out-of-vocabulary text keeps its own words
        generator = match.best.generator if match.known else motion.name
        settle = settle if generate.ground_feet else None
        if match.known:
            clip = _quality_check(clip, info, match.best, skeleton, generate)
    clip, info["clip"] = game_clip(clip, generator, motion.loop, motion.seconds, motion.loop_blend, settle)
    return clip, info


def _quality_check(clip: Motion, info: dict, best, skeleton: Skeleton, generate: MotionGenConfig) -> Motion:
    """`clip` when it passes the matched generator's signature (or nothing can check it), else per
    generate.quality_check the generator's procedural clip ("fallback") or `clip` ("warn"); the outcome
    goes to info["quality_check"] and, when it failed, a sentence to info["warnings"]."""
    from avatarclip_core.motion import signatures

    if generate.quality_check == "off" or not signatures.has_signature(best.generator):
        return clip
    from avatarclip_core.motion.canonical import to_canonical, to_motion
    from avatarclip_core.motion.corpus import make_clip

    handedness = _label_handedness(best.generator, best.label)
    passed = signatures.does_what_it_says(best.generator, to_canonical(clip, skeleton), skeleton, handedness)
    fallback = not passed and generate.quality_check == "fallback"
    info["quality_check"] = {"generator": best.generator, "signature_passed": passed,
                             "source": "procedural" if fallback else "generated"}
    if passed:
        return clip
    if not fallback:
        info["warnings"].append(f"the motion generated for '{info['text']}' does not pass the '{best.generator}' "
                                f"check (what that motion must do); kept as asked (motion_gen.quality_check=warn)")
        return clip
    info["warnings"].append(f"the motion generated for '{info['text']}' does not pass the '{best.generator}' check "
                            f"(what that motion must do), so the job uses the procedural '{best.generator}' clip")
    variation = {**signatures.DEFAULT_VARIATION, "handedness": "left" if handedness == "left" else "right"}
    procedural = make_clip(best.generator, skeleton, variation, fps=info["fps"]).motion
    return to_motion(procedural, skeleton, clip.name)


def _label_handedness(generator: str, label: str) -> str:
    """"left" / "right" when `label` names one side of a handed generator, else "either"."""
    from avatarclip_core.motion.corpus.builder import REGISTRY
    from avatarclip_core.motion.corpus.library import side_labels

    if generator not in REGISTRY or not REGISTRY[generator].handed:
        return "either"
    left, right = side_labels(generator, "left"), side_labels(generator, "right")
    if label in left and label not in right:
        return "left"
    if label in right and label not in left:
        return "right"
    return "either"


def _builtin(skeleton: Skeleton, motion: MotionConfig) -> Motion:
    """The built-in clip; with motion.seconds, as many of its cycles as come nearest that length (one
    more for a loop: closing it may drop the first frames, where a walk sets off)."""
    from dataclasses import replace

    from avatarclip_core.motion.game_clip import wants_loop

    clip = make_motion(skeleton, motion)
    if motion.seconds > 0 and clip.duration > 0:
        cycles = max(1, int(round(motion.cycles * motion.seconds / clip.duration)))
        cycles += int(wants_loop(motion.loop, motion.name))
        if cycles != motion.cycles:
            clip = make_motion(skeleton, replace(motion, cycles=cycles))
    return clip
