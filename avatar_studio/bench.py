"""`avatar bench`: medians of the operations users wait for, written to bench.json.

Speed goals live here, never in timed tests. Each entry records what was measured and how.
"""
from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

from avatarclip_core.provenance import device_info, package_versions


def _median_ms(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000.0)
    return round(statistics.median(times), 3)


def bench_body(repeats: int) -> dict:
    from avatarclip_core.body import create_body_model
    from avatarclip_core.motion.procedural import MotionConfig, make_motion

    started = time.perf_counter()
    body = create_body_model()
    load_s = time.perf_counter() - started
    shape = body.shape_vector({"height": 0.7})
    J = len(body.joint_names)
    mesh = body.rigged_mesh({})
    walk = make_motion(mesh.skeleton, MotionConfig(name="walk"))
    with torch.no_grad():
        one = _median_ms(lambda: body.forward(shape, torch.eye(3).repeat(1, J, 1, 1)), repeats)
        frames = _median_ms(lambda: body.forward(shape, walk.rotations, walk.root_translation), repeats)
        rigged = _median_ms(lambda: body.rigged_mesh({"height": 0.7}), repeats)
    return {
        "body_model_load_s": round(load_s, 3),
        "vertices": int(mesh.vertices.shape[0]), "joints": J,
        "body_forward_1_pose_ms": one,
        f"body_forward_{walk.num_frames}_frames_ms": frames,
        "rigged_mesh_ms": rigged,
    }


def bench_export(repeats: int) -> dict:
    from avatarclip_core.body import create_body_model
    from avatarclip_core.export import write_glb
    from avatarclip_core.motion.procedural import MotionConfig, make_motion

    body = create_body_model()
    mesh = body.rigged_mesh({})
    mesh.vertex_colors = torch.full((mesh.vertices.shape[0], 3), 0.7)
    walk = make_motion(mesh.skeleton, MotionConfig(name="walk"))
    with tempfile.TemporaryDirectory() as tmp:
        static = _median_ms(lambda: write_glb(mesh, Path(tmp) / "a.glb"), repeats)
        animated = _median_ms(lambda: write_glb(mesh, Path(tmp) / "b.glb", motion=walk), repeats)
        size = (Path(tmp) / "b.glb").stat().st_size

    def forward_and_export():
        with torch.no_grad():
            m = body.rigged_mesh({"height": 0.9})
        write_glb(m, Path(tmp2) / "c.glb", motion=walk)

    with tempfile.TemporaryDirectory() as tmp2:
        total = _median_ms(forward_and_export, repeats)
    return {
        "glb_export_static_ms": static,
        f"glb_export_walk_{walk.num_frames}_frames_ms": animated,
        "glb_walk_bytes": size,
        "body_forward_plus_glb_export_ms": total,
        **_bench_face_shapes_and_cap(body, mesh, walk, repeats),
        **_bench_profiles_and_vrm(body, mesh, walk, repeats),
    }


def _bench_profiles_and_vrm(body, mesh, walk, repeats: int) -> dict:
    """Export profiles (cap + T-pose bake + names) and VRM 1.0: time per step, file sizes with the
    face shapes, and how far the T-pose bake moves the skinned walk (LBS of the re-rested vertices)."""
    from avatarclip_core.export.apply_profile import apply_profile, capped_mesh
    from avatarclip_core.export.face_shapes import with_face_shapes
    from avatarclip_core.export.profiles import resolve_profile
    from avatarclip_core.export.vrm import vrm_bytes, vrma_bytes
    from avatarclip_core.rig.rest_pose import bake_rest_pose, rest_change_error, t_pose_rotations

    faced = with_face_shapes(mesh, body, mesh.vertices)
    vrm_mesh, vrm_walk = apply_profile(faced, walk, resolve_profile("vrm"))
    capped = capped_mesh(mesh, 4)
    pose = t_pose_rotations(capped.skeleton)
    return {
        "profile_unity_walk_ms": _median_ms(lambda: apply_profile(faced, walk, resolve_profile("unity")), repeats),
        "vrm_export_ms": _median_ms(lambda: vrm_bytes(vrm_mesh), repeats),
        "vrm_bytes": len(vrm_bytes(vrm_mesh)),
        "vrma_walk_export_ms": _median_ms(lambda: vrma_bytes(vrm_mesh, vrm_walk), repeats),
        "vrma_walk_bytes": len(vrma_bytes(vrm_mesh, vrm_walk)),
        "t_pose_walk_max_change_mm": round(1000 * rest_change_error(capped, bake_rest_pose(capped, pose), walk, pose), 2),
    }


def _bench_face_shapes_and_cap(body, mesh, walk, repeats: int) -> dict:
    """ARKit shapes + visemes: build time (face units already loaded), bytes they add to the walk GLB;
    and what capping the influences at 4 (three.js, Unity, VRM) moves the skinned vertices by."""
    from avatarclip_core.export import glb_bytes
    from avatarclip_core.export.face_shapes import with_face_shapes
    from avatarclip_core.export.weights import influence_cap_error

    body.face_units()
    faced = with_face_shapes(mesh, body, mesh.vertices)
    cap = influence_cap_error(mesh, walk, 4)
    return {
        "face_shapes_ms": _median_ms(lambda: with_face_shapes(mesh, body, mesh.vertices), repeats),
        "face_shapes_glb_added_bytes": len(glb_bytes(faced, walk)) - len(glb_bytes(mesh, walk)),
        "face_shapes_glb_export_walk_ms": _median_ms(lambda: glb_bytes(faced, walk), repeats),
        "max_influences_4_walk_error_mm": {k: round(v, 4) for k, v in cap.items()},
    }


def bench_render_sizes(repeats: int) -> dict:
    """The CLIP-loop workload (silhouette + shaded + texture-less, gradients to vertices/colours) on
    the default body, one view and four views per call."""
    from avatarclip_core.body import create_body_model
    from avatarclip_core.render.bench import bench_render

    mesh = create_body_model().rigged_mesh({})
    body = (mesh.vertices, mesh.faces)
    return {f"render_{size}_batch{batch}": bench_render(size, repeats=repeats, batch=batch, mesh=body)
            for size in (128, 224, 256) for batch in (1, 4)}


def bench_queues(repeats: int) -> dict:
    """Queue overhead (submit -> started), sliders-job latency and 20-job throughput on both brokers
    with a real worker process (workers.bench; Redis is skipped with a reason when none answers)."""
    from workers.bench import bench_queue

    return {kind: bench_queue(kind, jobs=20, repeats=repeats) for kind in ("sqlite", "redis")}


def bench_text_presets(repeats: int) -> dict:
    """Per-stage time and peak memory of the text job for the preview and standard presets
    (one cold run each: stage-1 NeuS uncached; see pipelines/bench_text)."""
    from avatar_studio.bench_text import bench_text

    return bench_text(("preview", "standard"))


def bench_motion_generation(repeats: int) -> dict:
    """Text -> motion: training time per epoch (pose VAE, motion VAE) and latent-optimisation wall time
    for 60 frames, offline and (random-weight ViT-B-32, timing only) with L_clip (motion.bench); and one
    `avatar text --motion` run with CLIP on the preview preset, cold and warm, beside the paper's every-step
    schedule and a bare ViT-B-32 forward/backward measured in the same run (bench_motion_clip)."""
    from avatar_studio.bench_motion_clip import bench_motion_clip
    from avatarclip_core.motion.bench import bench_motion

    return {**bench_motion(clip=True), "clip_motion_preview": bench_motion_clip()}


def bench_photo_methods(repeats: int) -> dict:
    """Photo -> game parameters: photos/s end to end per method and seconds per iterative fit."""
    from avatar_studio.bench_batch import bench_photo_batch
    from avatar_studio.bench_photo import bench_photo

    return {**bench_photo(repeats=min(repeats, 3)), "batch": bench_photo_batch()}


def bench_cli_start(repeats: int) -> dict:
    """Cold start from outside the process: seconds to each command's first line of output and wall
    seconds of a cold one-shot `avatar photo`, beside a bare `python -c "import numpy"` (bench_cli)."""
    from avatar_studio.bench_cli import bench_cli

    return bench_cli(repeats=min(repeats, 5))


def bench_photo_job_memory(repeats: int) -> dict:
    """Peak resident memory of a photo job process: a 40 MP JPEG (reduced while decoding, and at full
    resolution as before) against a 0.26 MP photo (bench_photo.bench_photo_memory; one child each)."""
    from avatar_studio.bench_photo import bench_photo_memory

    return bench_photo_memory()


def bench_create_job(repeats: int) -> dict:
    """The whole create job (issue 15) in fresh processes: wall and CPU seconds, per-stage timings and
    shares from provenance.json, the load average around each run; the first run (filling the per-user
    caches) apart, and one run on torch's default thread count beside the job's one (bench_create)."""
    from avatar_studio.bench_create import bench_create

    return bench_create(repeats=min(repeats, 3))


def bench_web(repeats: int) -> dict:
    """The web server's resident-set growth over 1,000 raw REST calls (POST + GET of
    /gradio_api/call/job_status, half of them errors), measured on its own process (web.soak)."""
    from web.soak import raw_call_growth

    return raw_call_growth(calls=1000)


ALL_SECTIONS = ("body", "export", "render", "queue", "text", "motion", "photo", "photo_memory", "web", "cli",
                "create")


def run_bench(repeats: int = 5, output: Path = Path("bench.json"), sections: tuple[str, ...] = ALL_SECTIONS) -> dict:
    benches = {"body": bench_body, "export": bench_export, "render": bench_render_sizes, "queue": bench_queues,
               "text": bench_text_presets, "motion": bench_motion_generation,
               "photo": bench_photo_methods, "photo_memory": bench_photo_job_memory, "web": bench_web,
               "cli": bench_cli_start, "create": bench_create_job}
    results: dict = {"versions": package_versions(), "device": device_info("cpu"), "repeats": repeats}
    for name in sections:
        results[name] = benches[name](repeats)
    output = Path(output)
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    tmp.replace(output)
    return results
