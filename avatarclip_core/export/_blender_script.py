"""Code that runs INSIDE a Blender (`bpy`) subprocess; `fbx.py` starts it, nothing imports it.

Invoked as `python _blender_script.py JSON_ARGS`; writes a JSON result to args["result"].
Exit status 3 means bpy is not importable in that interpreter.
"""
import json
import sys
import time

try:
    import bpy
except ImportError as exc:  # pragma: no cover - depends on the interpreter
    sys.stderr.write(f"bpy is not importable: {exc}\n")
    sys.exit(3)

BONE_SHAPE_COLLECTION = "glTF_not_exported"  # where Blender's glTF importer puts its bone-shape mesh


def reset(fps):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    if fps:
        # The glTF importer turns key times into frames with the scene rate: match the clip's rate so
        # one clip frame is one Blender frame (fps_base covers non-integer rates such as 29.97).
        scene = bpy.context.scene
        scene.render.fps = max(1, round(fps))
        scene.render.fps_base = scene.render.fps / fps


def remove_bone_shapes():
    """Delete the 'Icosphere' bone-display mesh the glTF importer adds, so it is neither exported nor counted."""
    doomed = [
        ob
        for ob in bpy.data.objects
        if any(c.name.startswith(BONE_SHAPE_COLLECTION) for c in ob.users_collection)
        or (ob.type == "MESH" and ob.name.startswith("Icosphere") and ob.parent is None and not ob.modifiers)
    ]
    for ob in doomed:
        bpy.data.objects.remove(ob, do_unlink=True)
    for coll in list(bpy.data.collections):
        if coll.name.startswith(BONE_SHAPE_COLLECTION) and not coll.objects:
            bpy.data.collections.remove(coll)
    for mesh in list(bpy.data.meshes):
        if mesh.users == 0:
            bpy.data.meshes.remove(mesh)


def load(path, fps=None):
    reset(fps)
    lower = path.lower()
    if lower.endswith((".glb", ".gltf")):
        bpy.ops.import_scene.gltf(filepath=path)
    elif lower.endswith(".fbx"):
        bpy.ops.import_scene.fbx(filepath=path)
    elif lower.endswith(".bvh"):
        # Our BVH files are Y up, facing +Z (like glTF), so they land in the same Blender space.
        bpy.ops.import_anim.bvh(filepath=path, axis_forward="-Z", axis_up="Y", update_scene_fps=True)
    else:
        raise ValueError(f"cannot import {path}: expected .glb, .gltf, .fbx or .bvh")
    remove_bone_shapes()


def frame_count():
    ranges = [a.frame_range for a in bpy.data.actions]
    if not ranges:
        return 0
    start = min(r[0] for r in ranges)
    end = max(r[1] for r in ranges)
    return int(round(end - start)) + 1


def texture_straight_to_base_color():
    """FBX materials only carry an image wired directly into Base Color; glTF imports with vertex
    colours put a Mix node in between, which the FBX exporter would silently drop with the texture."""
    for mat in bpy.data.materials:
        tree = mat.node_tree
        if tree is None:
            continue
        for bsdf in (n for n in tree.nodes if n.type == "BSDF_PRINCIPLED"):
            socket = bsdf.inputs["Base Color"]
            if not socket.is_linked or socket.links[0].from_node.type == "TEX_IMAGE":
                continue
            seen, queue, image_node = set(), [socket.links[0].from_node], None
            while queue and image_node is None:
                node = queue.pop()
                if node.name in seen:
                    continue
                seen.add(node.name)
                if node.type == "TEX_IMAGE":
                    image_node = node
                queue.extend(link.from_node for inp in node.inputs for link in inp.links)
            if image_node is not None:
                tree.links.new(image_node.outputs["Color"], socket)


def joint_positions(armatures, clip_frames):
    """World head position of every pose bone at the given clip frames (0 = the action's first frame),
    in Blender's Z-up coordinates: lets tests compare Blender's playback with our FK."""
    scene = bpy.context.scene
    ranges = [a.frame_range for a in bpy.data.actions]
    start = int(round(min(r[0] for r in ranges))) if ranges else scene.frame_start
    out = {}
    for t in clip_frames:
        scene.frame_set(start + int(t))
        out[str(t)] = {
            pb.name: list(arm.matrix_world @ pb.head) for arm in armatures for pb in arm.pose.bones
        }
    return out


def inspect(args):
    load(args["path"], args.get("fps"))
    armatures = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    meshes = [o for o in bpy.data.objects if o.type == "MESH"]
    scene = bpy.context.scene
    return {
        "joint_positions": joint_positions(armatures, args.get("sample_frames") or []),
        "armatures": len(armatures),
        "bones": sum(len(a.data.bones) for a in armatures),
        "meshes": len(meshes),
        "frames": frame_count(),
        "actions": len(bpy.data.actions),
        "bone_names": [b.name for a in armatures for b in a.data.bones],
        "mesh_names": [m.name for m in meshes],
        "action_names": [a.name for a in bpy.data.actions],
        "vertices": sum(len(m.data.vertices) for m in meshes),
        "images": len([i for i in bpy.data.images if i.size[0] > 0]),
        "fps": scene.render.fps / scene.render.fps_base,
        "blender": bpy.app.version_string,
    }


def glb_to_fbx(args):
    t0 = time.perf_counter()
    load(args["glb"], args.get("fps"))
    texture_straight_to_base_color()
    scene = bpy.context.scene
    if bpy.data.actions:
        # Bake exactly the clip's frames (the empty scene's default range is 1..250).
        start = min(a.frame_range[0] for a in bpy.data.actions)
        end = max(a.frame_range[1] for a in bpy.data.actions)
        scene.frame_start, scene.frame_end = int(round(start)), int(round(end))
    t1 = time.perf_counter()
    bpy.ops.export_scene.fbx(
        filepath=args["fbx"],
        object_types={"ARMATURE", "MESH"},
        add_leaf_bones=False,  # leaf "_end" bones would change the bone count engines see
        mesh_smooth_type="FACE",  # smoothing groups, which Unreal and Unity expect
        bake_anim=True,
        bake_anim_use_all_actions=True,  # one FBX take per action, named after it
        bake_anim_use_nla_strips=False,
        bake_anim_force_startend_keying=True,
        bake_anim_simplify_factor=0.0,  # keep every frame: no key reduction
        path_mode="COPY",
        embed_textures=True,
    )
    return {"import_s": t1 - t0, "export_s": time.perf_counter() - t1, "blender": bpy.app.version_string}


def main():
    args = json.loads(sys.argv[1])
    result = {"inspect": inspect, "glb_to_fbx": glb_to_fbx}[args["op"]](args)
    with open(args["result"], "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
