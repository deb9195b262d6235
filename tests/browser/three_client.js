// Loads our exported files in a real client: three.js (GLTFLoader) and @pixiv/three-vrm in headless
// Chromium (driven by tests/test_vrm_browser.py; npm packages pinned in package.json).
// usage: node three_client.js vrm FILE.vrm OUT.json   -> humanoid bones, expressions, face pixel changes
//        node three_client.js skin FILE.glb TIME OUT.json -> skinned vertex positions at TIME (animation 0)
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
  "@pixiv/three-vrm": "/node_modules/@pixiv/three-vrm/lib/three-vrm.module.js"}}</script>
<script type="module">
import * as THREE from "three";
import { GLTFLoader } from "three/addons/loaders/GLTFLoader.js";
import { VRMLoaderPlugin } from "@pixiv/three-vrm";
let process_images = false;
window.run = async (mode, url, time, withImages) => {
  process_images = withImages;
  const loader = new GLTFLoader();
  loader.register((parser) => new VRMLoaderPlugin(parser));
  const gltf = await loader.loadAsync(url);
  if (mode === "skin") return skinned(gltf, time);
  return checkVrm(gltf);
};
function skinned(gltf, time) {
  const mixer = new THREE.AnimationMixer(gltf.scene);
  mixer.clipAction(gltf.animations[0]).play();
  mixer.setTime(time);
  gltf.scene.updateMatrixWorld(true);
  let mesh = null;
  gltf.scene.traverse((o) => { if (o.isSkinnedMesh && !mesh) mesh = o; });
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
  const renderer = new THREE.WebGLRenderer({ antialias: false, preserveDrawingBuffer: true });
  const size = 256;
  renderer.setSize(size, size);
  document.body.appendChild(renderer.domElement);
  const scene = new THREE.Scene();
  scene.background = new THREE.Color(0.2, 0.2, 0.25);
  scene.add(vrm.scene);
  const light = new THREE.DirectionalLight(0xffffff, Math.PI);  // MToon shades by the scene's lights
  light.position.set(0.4, 1.0, 1.0);
  scene.add(light, new THREE.AmbientLight(0xffffff, 0.3));
  vrm.update(0);
  const head = vrm.humanoid.getRawBoneNode("head");
  const headPos = new THREE.Vector3();
  head.getWorldPosition(headPos);
  const camera = new THREE.PerspectiveCamera(20, 1, 0.01, 10);
  camera.position.set(headPos.x, headPos.y + 0.06, headPos.z + 0.75);  // the avatar faces +Z
  camera.lookAt(headPos.x, headPos.y + 0.06, headPos.z);
  const gl = renderer.getContext();
  const pixels = () => {
    renderer.render(scene, camera);
    const buf = new Uint8Array(size * size * 4);
    gl.readPixels(0, 0, size, size, gl.RGBA, gl.UNSIGNED_BYTE, buf);
    return buf;
  };
  const setOnly = (name) => {
    for (const e of expressions) vrm.expressionManager.setValue(e, e === name ? 1 : 0);
    vrm.update(0);
  };
  setOnly(null);
  const base = pixels();
  let faceCovered = 0;  // pixels that differ from the background (the corner pixel)
  for (let i = 0; i < base.length; i += 4) if (Math.abs(base[i] - base[0]) + Math.abs(base[i + 2] - base[2]) > 8) faceCovered++;
  const image = renderer.domElement.toDataURL("image/png");
  const changed = {}, images = {};
  for (const name of expressions) {
    setOnly(name);
    const img = pixels();
    if (process_images) images[name] = renderer.domElement.toDataURL("image/png");
    let count = 0;
    for (let i = 0; i < img.length; i += 4) {
      if (Math.abs(img[i] - base[i]) + Math.abs(img[i + 1] - base[i + 1]) + Math.abs(img[i + 2] - base[i + 2]) > 24) count++;
    }
    changed[name] = count;
  }
  const binds = {};
  for (const e of vrm.expressionManager.expressions) binds[e.expressionName] = e._binds.length;
  return { bones, expressions, changed, binds, face_pixels: faceCovered, image, images, meta_name: vrm.meta.name,
           meta_version: vrm.meta.metaVersion, look_at: !!vrm.lookAt,
           first_person: !!vrm.firstPerson, morph_targets: countTargets(vrm.scene) };
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
    else if (url.startsWith("/node_modules/")) target = path.join(here, path.normalize(url));
    const allowed = url === "/model" || (target && target.startsWith(path.join(here, "node_modules") + path.sep));
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
    const time = mode === "skin" ? Number(rest[0]) : 0;
    const withImages = process.env.THREE_CLIENT_IMAGES === "1";  // every expression's render, for a look
    const result = await page.evaluate(([m, t, i]) => window.run(m, "/model", t, i), [mode, time, withImages]);
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
