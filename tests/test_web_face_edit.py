"""Editing photo results: the `face` job kind (engine parameters -> avatar), /create_from_face_params and
the 'Edit photo result' tab's logic. Fast: bad input is refused at submit and stores nothing, edits merge
onto a finished photo job's params.json (a hand-made one) without a worker. Slow: a real worker makes a
photo avatar, one slider and one asset are edited, and the new job keeps everything else."""
from __future__ import annotations

import json

import gradio_client
import jsonschema
import pytest

from web import face_edit as F
from web.testing import studio, wait_for_job

SLIDER = "nose-scale-horiz-incr"


@pytest.fixture(scope="module")
def spec():
    from face2param.spec_cache import default_engine_spec

    return default_engine_spec()


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    with studio(tmp_path_factory.mktemp("face-edit-web"), worker=False) as s:
        yield s


def _client(url: str):
    return gradio_client.Client(url, verbose=False, download_files=False)


def _source_params(spec) -> dict:
    """A photo result's parameters: values off the sliders' 0.01 grid, non-default assets."""
    continuous = {p.name: round(0.1 + 0.8 * ((i * 37) % 100) / 100 + 0.0012345, 6) for i, p in enumerate(spec.continuous)}
    discrete = {s.name: s.options[-1] for s in spec.discrete}
    return {"continuous": continuous, "discrete": discrete}


def _fake_finished_job(s, kind: str, params: dict | None) -> str:
    """A job the store records as SUCCESS with a params.json in its folder (no worker needed)."""
    from workers.store import new_job_id, utc_now_iso

    job_id = new_job_id()
    s.api.store.create(job_id, kind, {}, {}, "cpu", utc_now_iso())
    s.api.store.finish(job_id, "SUCCESS")
    folder = s.settings.job_dir(job_id)
    folder.mkdir(parents=True)
    if params is not None:
        (folder / "params.json").write_text(json.dumps({"engine": "anny_face", "version": 1, "method": "oneshot",
                                                        **params}))
    return job_id


# ---- the job kind: checked at submit, nothing stored ------------------------------------------------

@pytest.mark.parametrize("inputs,message", [
    ({"params": {"continuous": {SLIDER: 1.5}}}, f"inputs.params: parameter '{SLIDER}' = 1.5 is out of range [0, 1]"),
    ({"params": {"continuous": {"nose-scale-horz-incr": 0.5}}},
     "unknown continuous parameter 'nose-scale-horz-incr'; did you mean 'nose-scale-horiz-incr'"),
    ({"params": {"continuous": {SLIDER: "wide"}}}, f'parameter \'{SLIDER}\' must be a number, got "wide"'),
    ({"params": {"continuous": {SLIDER: True}}}, f"parameter '{SLIDER}' must be a number, got true"),
    ({"params": {"discrete": {"beard": "goate"}}}, "slot 'beard' has no option 'goate'; did you mean 'goatee'?"),
    ({"params": {"discrete": {"bread": "full"}}}, "unknown discrete slot 'bread'; did you mean 'beard'?"),
    ({"params": {"continuous": [0.5]}}, "'continuous' and 'discrete' must be objects"),
    ({}, "inputs.params is missing"),
    ({"params": {}, "photo": "x.png"}, "unknown face input field 'photo'"),
    ({"params": {}, "source_job": "../../etc"}, "inputs.source_job '../../etc' is not a job id"),
])
def test_the_face_kind_refuses_bad_params_and_stores_nothing(web, inputs, message):
    from avatar_studio.errors import InvalidJobInputError

    before = len(web.api.list(1000))
    with pytest.raises(InvalidJobInputError) as info:
        web.api.submit("face", inputs, {"preset": "preview"})
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert len(web.api.list(1000)) == before


def test_the_face_kind_stores_the_full_parameter_set(web, spec):
    job_id = web.api.submit("face", {"params": {"continuous": {SLIDER: 0.8}, "discrete": {"beard": "full"}}})
    rec = web.api.record(job_id)
    web.api.cancel(job_id)
    assert rec.kind == "face" and rec.inputs["source_job"] == ""
    assert set(rec.inputs["params"]["continuous"]) == set(spec.continuous_names)
    assert rec.inputs["params"]["continuous"][SLIDER] == 0.8
    assert rec.inputs["params"]["discrete"] == {**{s.name: s.default for s in spec.discrete}, "beard": "full"}


def test_an_external_engines_params_are_left_to_the_worker(web):
    """The bundled spec does not describe another engine: the worker checks against that engine's."""
    job_id = web.api.submit("face", {"params": {"continuous": {"jaw_width": 0.7}}},
                            {"preset": "preview", "overrides": {"engine_kind": "external"}})
    rec = web.api.record(job_id)
    web.api.cancel(job_id)
    assert rec.inputs["params"] == {"continuous": {"jaw_width": 0.7}, "discrete": {}}


def test_the_spec_is_read_without_torch_and_matches_the_engine():
    import subprocess
    import sys

    code = ("import json, sys\nfrom face2param.spec_cache import default_engine_spec\n"
            "s = default_engine_spec()\nprint(json.dumps([len(s.continuous), s.slot_names, 'torch' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=True)
    n, slots, torch_loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert n == 143 and not torch_loaded
    assert slots == ["hair_style", "eyebrows", "beard", "glasses", "skin_tone", "hair_colour", "eye_colour"]


# ---- the page's controls -------------------------------------------------------------------------

def test_unmoved_sliders_keep_the_exact_loaded_values(spec):
    loaded = _source_params(spec)
    order = F.page_order(spec)  # grouped on the page: not the spec's order
    assert [p.name for p in order] != spec.continuous_names and sorted(p.name for p in order) == sorted(spec.continuous_names)
    shown = [round(loaded["continuous"][p.name], 2) for p in order]  # what a 0.01 slider shows
    moved = [p.name for p in order].index(SLIDER)
    shown[moved] = 0.95
    options = [loaded["discrete"][s.name] for s in spec.discrete]
    options[spec.slot_names.index("beard")] = "goatee"
    out = F.edited_params(spec, loaded, shown, options)
    assert out["continuous"][SLIDER] == 0.95
    assert {k: v for k, v in out["continuous"].items() if k != SLIDER} == \
        {k: v for k, v in loaded["continuous"].items() if k != SLIDER}
    assert out["discrete"] == {**loaded["discrete"], "beard": "goatee"}


def test_slider_labels_and_groups(spec):
    labels = {p.name: F.slider_label(p) for p in spec.continuous}
    assert labels["l-cheek-trans-up"] == "Left cheek: trans up"
    assert labels["gender"] == "Gender (male to female)"
    groups = F.grouped(spec)
    assert list(groups)[:3] == ["phenotype", "forehead", "brows"]
    assert sum(len(v) for v in groups.values()) == 143


# ---- REST: /create_from_face_params (no worker) ----------------------------------------------------

def test_edits_go_on_top_of_the_source_job(web, spec):
    source = _source_params(spec)
    source_job = _fake_finished_job(web, "photo", source)
    request = {"source_job": source_job, "continuous": {SLIDER: 0.9}, "discrete": {"glasses": "round"}}
    job_id = _client(web.url).predict(json.dumps(request), api_name="/create_from_face_params")
    rec = web.api.record(job_id)
    web.api.cancel(job_id)
    assert rec.kind == "face" and rec.inputs["source_job"] == source_job
    assert rec.inputs["params"]["continuous"] == {**source["continuous"], SLIDER: 0.9}
    assert rec.inputs["params"]["discrete"] == {**source["discrete"], "glasses": "round"}
    # the tab's Open reads the same parameters
    assert F.load_job_params(web.api, source_job) == source


def test_rest_errors_are_specific_and_store_nothing(web, spec):
    sliders_job = _fake_finished_job(web, "sliders", None)
    no_params = _fake_finished_job(web, "photo", None)
    pending = web.api.submit("face", {"params": {}})
    cases = [
        ("not json", "invalid JSON"),
        ("[1]", "expected a JSON object"),
        ('{"colour": "red"}', 'unknown field "colour"'),
        ('{"continuous": {"%s": 2}}' % SLIDER, f"parameter '{SLIDER}' = 2 is out of range [0, 1]"),
        ('{"discrete": {"hair_style": "mohawk"}}', "slot 'hair_style' has no option 'mohawk'"),
        ('{"source_job": "20240101-000000-ffffffffffff"}', "no job with id"),
        ('{"source_job": "%s"}' % sliders_job, "is a sliders job: only photo results"),
        ('{"source_job": "%s"}' % no_params, "has no readable params.json"),
        ('{"source_job": "%s"}' % pending, "open it once it has succeeded"),
        ('{"preset": "ultra"}', "unknown preset"),
    ]
    before = len(web.api.list(1000))
    c = _client(web.url)
    for payload, message in cases:
        with pytest.raises(gradio_client.exceptions.AppError) as info:
            c.predict(payload, api_name="/create_from_face_params")
        assert message in str(info.value), (payload, str(info.value))
        assert "Traceback" not in str(info.value)
    assert len(web.api.list(1000)) == before
    web.api.cancel(pending)


# ---- end to end with a real worker -----------------------------------------------------------------

@pytest.mark.slow
def test_edit_one_slider_and_one_asset_of_a_photo_result(tmp_path):
    import httpx
    from PIL import Image
    from skimage import data

    from gltf_validation import validate_glb

    photo = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    with studio(tmp_path / "data", worker=True) as s:
        c = _client(s.url)
        photo_job = c.predict(gradio_client.handle_file(str(photo)), "oneshot", "preview", api_name="/create_from_photo")
        st = wait_for_job(c, photo_job)
        assert st["state"] == "SUCCESS", st
        source = httpx.get(st["files"]["params.json"]).json()
        beard = next(o for o in ("full", "goatee") if o != source["discrete"]["beard"])
        value = 0.95 if source["continuous"][SLIDER] < 0.8 else 0.05
        edit_job = c.predict(json.dumps({"source_job": photo_job, "continuous": {SLIDER: value},
                                         "discrete": {"beard": beard}}), api_name="/create_from_face_params")
        edited = wait_for_job(c, edit_job)
        assert edited["state"] == "SUCCESS", edited
        assert edited["kind"] == "face"
        assert {"params.json", "face.png", "avatar.glb", "provenance.json"} <= set(edited["files"])
        params = httpx.get(edited["files"]["params.json"]).json()
        provenance = httpx.get(edited["files"]["provenance.json"]).json()
        glbs = {}
        for name, status in (("source", st), ("edited", edited)):
            glbs[name] = tmp_path / f"{name}.glb"
            glbs[name].write_bytes(httpx.get(status["files"]["avatar.glb"]).content)
        faces = [httpx.get(x["files"]["face.png"]).content for x in (st, edited)]
    assert params["method"] == "edited" and params["source_job"] == photo_job
    assert params["engine"] == source["engine"]
    assert params["continuous"][SLIDER] == value and params["discrete"]["beard"] == beard
    # what was not edited survives exactly: every other slider and every other asset / colour
    assert {k: v for k, v in params["continuous"].items() if k != SLIDER} == \
        {k: v for k, v in source["continuous"].items() if k != SLIDER}
    assert {k: v for k, v in params["discrete"].items() if k != "beard"} == \
        {k: v for k, v in source["discrete"].items() if k != "beard"}
    assert provenance["job_kind"] == "face" and provenance["inputs"]["source_job"] == photo_job
    # the params.json of an edit validates against the engine's JSON schema and can be edited again
    from face2param.engines.base import EngineParams
    from face2param.spec_cache import default_engine_spec

    jsonschema.validate(params, default_engine_spec().to_json_schema())
    assert EngineParams.from_json(params).validated(default_engine_spec()).discrete["beard"] == beard
    for glb in glbs.values():
        report = validate_glb(glb)
        assert report["issues"]["numErrors"] == 0 and report["info"]["hasSkins"], report["issues"]["messages"][:5]
    assert glbs["source"].read_bytes() != glbs["edited"].read_bytes()
    assert faces[0] != faces[1]  # the new beard shows on the face render
