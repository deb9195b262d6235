// Loads our exported files in a real client: three.js (GLTFLoader) and @pixiv/three-vrm in headless
// Chromium (driven by tests/test_vrm_browser.py; npm packages pinned in package.json).
// usage: node three_client.js vrm FILE.vrm OUT.json   -> humanoid bones, expressions, face pixel changes
//        node three_client.js skin FILE.glb TIME [NAME=W,...] OUT.json -> skinned vertex positions at TIME
//            (animation 0), the named morph targets at weight W (three.js morphs, then skins)
//        node three_client.js morph FILE.glb OUT.json -> face pixels each GLB morph target changes alone
//        node three_client.js parts FILE.glb|FILE.vrm OUT.json -> each skinned mesh: node and material names,
//            vertices, morph targets, shared skeleton; for a VRM the meshes "blink" sets weights on
//        node three_client.js vrma FILE.vrm FILE.vrma TIME OUT.json -> humanoid bone world positions at TIME
//            after @pixiv/three-vrm-animation retargets the clip onto the VRM
// Uses the system chromium (CHROMIUM env or /usr/bin/chromium) with SwiftShader WebGL; never downloads.
const http = require("http");
const fs = require("fs");
const path = require("path");
const { chromium } = require("playwright-core");

const [mode, file, ...rest] = process.argv.slice(2);
const outPath = rest[rest.length - 1];
const here = __dirname;
const TYPES = { ".js": "text/javascript", ".html": "text/html", ".vrm": "model/gltf-binary", ".glb": "model/gltf-binary" };

const PAGE = `<!doctype html><html><body style="margin:0">
<script type="importmap">{"imports": {
  "three": "/node_modules/three/build/three.module.js",
  "three/addons/": "/node_modules/three/examples/jsm/",
  "@pixiv/three-vrm": "/node_modules/@pixiv/three-vrm/lib/three-vrm.module.js",
  "@pixiv/three-vrm-animation": "/node_modules/@pixiv/three-vrm-animation/lib/three-vrm-animation.module.js"}}</script>
<script type="module">
import * as THREE from "three";
import { GLTFLoader } from "three/addons/loaders/GLTFLoader.js";
import { VRMLoaderPlugin } from "@pixiv/three-vrm";
import { VRMAnimationLoaderPlugin, createVRMAnimationClip } from "@pixiv/three-vrm-animation";
let process_images = false;
window.run = async (mode, url, time, withImages, weights) => {
  process_images = withImages;
  const loader = new GLTFLoader();
  loader.register((parser) => new VRMLoaderPlugin(parser));
  const gltf = await loader.loadAsync(url);
  if (mode === "skin") return skinned(gltf, time, weights);
  if (mode === "morph") return morphPixels(gltf);
  if (mode === "vrma") return playVrma(gltf, loader, time);
  if (mode === "parts") return meshParts(gltf);
  return checkVrm(gltf);
};
async function playVrma(gltf, loader, time) {
  loader.register((parser) => new VRMAnimationLoaderPlugin(parser));
  const anim = await loader.loadAsync("/anim");
  const vrm = gltf.userData.vrm;
  const clip = createVRMAnimationClip(anim.userData.vrmAnimations[0], vrm);
  const mixer = new THREE.AnimationMixer(vrm.scene);
  mixer.clipAction(clip).play();
  mixer.setTime(time);
  vrm.update(0);
  vrm.scene.updateMatrixWorld(true);
  const positions = {}, v = new THREE.Vector3();
  for (const name of Object.keys(vrm.humanoid.humanBones)) {
    vrm.humanoid.getRawBoneNode(name).getWorldPosition(v);
    positions[name] = [v.x, v.y, v.z];
  }
  return { positions, tracks: clip.tracks.length, duration: clip.duration };
}
function meshParts(gltf) {
  const root = gltf.userData.vrm ? gltf.userData.vrm.scene : gltf.scene;
  const parts = [], skeletons = new Set();
  root.traverse((o) => {
    if (!o.isSkinnedMesh) return;
    skeletons.add(o.skeleton.bones.map((b) => b.uuid).join());  // the same bones, not copies
    parts.push({ name: o.name, material: o.material.name, material_type: o.material.isMToonMaterial ? "MToonMaterial" : o.material.type,
                 color: o.material.color ? o.material.color.toArray() : null,
                 vertices: o.geometry.attributes.position.count,
                 morph_targets: Object.keys(o.morphTargetDictionary || {}).length });
  });
  const result = { parts, skeletons: skeletons.size };
  const vrm = gltf.userData.vrm;
  if (vrm) {
    vrm.expressionManager.setValue("blink", 1);
    vrm.update(0);
    result.blinking = [];
    root.traverse((o) => { if (o.isSkinnedMesh && (o.morphTargetInfluences || []).some((w) => w > 0)) result.blinking.push(o.name); });
  }
  return result;
}
function skinnedMesh(root) {
  let mesh = null;
  root.traverse((o) => { if (o.isSkinnedMesh && !mesh) mesh = o; });
  return mesh;
}
function skinned(gltf, time, weights) {
  const mixer = new THREE.AnimationMixer(gltf.scene);
  mixer.clipAction(gltf.animations[0]).play();
  mixer.setTime(time);
  gltf.scene.updateMatrixWorld(true);
  const mesh = skinnedMesh(gltf.scene);
  for (const [name, w] of Object.entries(weights || {})) {
    if (!(name in (mesh.morphTargetDictionary || {}))) return { error: "no morph target " + name };
    mesh.morphTargetInfluences[mesh.morphTargetDictionary[name]] = w;
  }
  const v = new THREE.Vector3(), out = [];
  const n = mesh.geometry.attributes.position.count;
  for (let i = 0; i < n; i++) {
    mesh.getVertexPosition(i, v);  // morphs + skinning, in the mesh's local space
    v.applyMatrix4(mesh.matrixWorld);
    out.push(v.x, v.y, v.z);
  }
  return { vertices: out, influences: mesh.geometry.attributes.skinIndex.itemSize,
           has_second_set: "skinIndex1" in mesh.geometry.attributes };
}
async function checkVrm(gltf) {
  const vrm = gltf.userData.vrm;
  if (!vrm) return { error: "three-vrm found no VRM in the file" };
  const bones = {};
  for (const name of Object.keys(vrm.humanoid.humanBones)) bones[name] = !!vrm.humanoid.getRawBoneNode(name);
  const expressions = vrm.expressionManager.expressions.map((e) => e.expressionName);
  vrm.update(0);
  const view = faceView(vrm.scene, vrm.humanoid.getRawBoneNode("head"));
  const setOnly = (name) => {
    for (const e of expressions) vrm.expressionManager.setValue(e, e === name ? 1 : 0);
    vrm.update(0);
  };
  setOnly(null);
  const base = view.pixels();
  const faceCovered = view.facePixels(base);
  const image = view.image();
  const changed = {}, images = {};
  for (const name of expressions) {
    setOnly(name);
    const img = view.pixels();
    if (process_images) images[name] = view.image();
    changed[name] = changedPixels(img, base);
  }
  const binds = {};
  for (const e of vrm.expressionManager.expressions) binds[e.expressionName] = e._binds.length;
  return { bones, expressions, changed, binds, face_pixels: faceCovered, image, images, meta_name: vrm.meta.name,
           meta_version: vrm.meta.metaVersion, look_at: !!vrm.lookAt,
           first_person: !!vrm.firstPerson, morph_targets: countTargets(vrm.scene) };
}
// A 256 px close-up of the face (the avatar faces +Z), lit from the front (MToon and glTF's PBR
// material both shade by the scene's lights).
function faceView(root, head) {
  const size = 256;
  const renderer = new THREE.WebGLRenderer({ antialias: false, preserveDrawingBuffer: true });
  renderer.setSize(size, size);
  document.body.appendChild(renderer.domElement);
  const scene = new THREE.Scene();
  scene.background = new THREE.Color(0.2, 0.2, 0.25);
  scene.add(root);
  const light = new THREE.DirectionalLight(0xffffff, Math.PI);
  light.position.set(0.4, 1.0, 1.0);
  scene.add(light, new THREE.AmbientLight(0xffffff, 0.3));
  root.updateMatrixWorld(true);
  const at = new THREE.Vector3();
  head.getWorldPosition(at);
  const camera = new THREE.PerspectiveCamera(20, 1, 0.01, 10);
  camera.position.set(at.x, at.y + 0.06, at.z + 0.75);
  camera.lookAt(at.x, at.y + 0.06, at.z);
  const gl = renderer.getContext();
  return {
    pixels: () => {
      renderer.render(scene, camera);
      const buf = new Uint8Array(size * size * 4);
      gl.readPixels(0, 0, size, size, gl.RGBA, gl.UNSIGNED_BYTE, buf);
      return buf;
    },
    image: () => renderer.domElement.toDataURL("image/png"),
    // pixels that differ from the background (the corner pixel)
    facePixels: (buf) => {
      let n = 0;
      for (let i = 0; i < buf.length; i += 4) if (Math.abs(buf[i] - buf[0]) + Math.abs(buf[i + 2] - buf[2]) > 8) n++;
      return n;
    },
  };
}
function changedPixels(a, b) {
  let count = 0;
  for (let i = 0; i < a.length; i += 4) {
    if (Math.abs(a[i] - b[i]) + Math.abs(a[i + 1] - b[i + 1]) + Math.abs(a[i + 2] - b[i + 2]) > 24) count++;
  }
  return count;
}
// A GLB's morph targets (no VRM): each alone at 1 against all at 0, on the face close-up.
function morphPixels(gltf) {
  const mesh = skinnedMesh(gltf.scene);
  const names = Object.keys(mesh.morphTargetDictionary || {});
  let head = null;  // the head joint, whichever naming the export profile chose
  // (three.js drops the colon of mixamorig:Head from node names)
  gltf.scene.traverse((o) => { if (!head && /^(head|Head|mixamorig:?Head)$/.test(o.name)) head = o; });
  if (!head) return { error: "no head joint" };
  const view = faceView(gltf.scene, head);
  const influences = mesh.morphTargetInfluences;
  influences.fill(0);
  const base = view.pixels();
  const changed = {};
  for (const name of names) {
    influences.fill(0);
    influences[mesh.morphTargetDictionary[name]] = 1;
    changed[name] = changedPixels(view.pixels(), base);
  }
  influences.fill(0);
  influences[mesh.morphTargetDictionary.jawOpen] = 1;
  view.pixels();
  const jaw_open = view.image();
  influences.fill(0);
  view.pixels();
  return { names, changed, face_pixels: view.facePixels(base), image: view.image(), jaw_open };
}
function countTargets(root) {
  let n = 0;
  root.traverse((o) => { if (o.morphTargetDictionary) n = Math.max(n, Object.keys(o.morphTargetDictionary).length); });
  return n;
}
window.ready = true;
</script></body></html>`;

function serve() {
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(req.url.split("?")[0]);
    let target = null;
    if (url === "/") { res.writeHead(200, { "Content-Type": "text/html" }); return res.end(PAGE); }
    if (url === "/model") target = path.resolve(file);
    else if (url === "/anim" && mode === "vrma") target = path.resolve(rest[0]);
    else if (url.startsWith("/node_modules/")) target = path.join(here, path.normalize(url));
    const allowed = url === "/model" || (url === "/anim" && target) || (target && target.startsWith(path.join(here, "node_modules") + path.sep));
    if (!allowed || !fs.existsSync(target)) {
      res.writeHead(404); return res.end();
    }
    res.writeHead(200, { "Content-Type": TYPES[path.extname(target)] || "application/octet-stream" });
    fs.createReadStream(target).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

(async () => {
  const server = await serve();
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist", "--no-sandbox"],
  });
  const logs = [];
  try {
    const page = await browser.newPage();
    page.on("console", (m) => logs.push(m.text()));
    page.on("pageerror", (e) => logs.push(String(e)));
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    await page.waitForFunction(() => window.ready === true, null, { timeout: 60000 });
    const time = mode === "skin" ? Number(rest[0]) : mode === "vrma" ? Number(rest[1]) : 0;
    const withImages = process.env.THREE_CLIENT_IMAGES === "1";  // every expression's render, for a look
    const weights = {};  // skin mode: NAME=W,... before OUT.json
    if (mode === "skin" && rest.length > 2) {
      for (const pair of rest[1].split(",")) { const [k, w] = pair.split("="); weights[k] = Number(w); }
    }
    const result = await page.evaluate(([m, t, i, w]) => window.run(m, "/model", t, i, w),
                                       [mode, time, withImages, weights]);
    result.console = logs.slice(-20);
    fs.writeFileSync(outPath, JSON.stringify(result));
  } catch (e) {
    fs.writeFileSync(outPath, JSON.stringify({ error: String(e), console: logs.slice(-20) }));
    process.exitCode = 1;
  } finally {
    await browser.close();
    server.close();
  }
})();
