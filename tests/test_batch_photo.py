"""`avatar photo DIR_OR_FILES... -o OUT`: one sub-folder per photo, summary.json with the failures; one bad
photo never stops the batch; bad arguments write nothing."""
from __future__ import annotations

import json

import pytest
import skimage.data
from PIL import Image

from avatarclip_core.errors import UserInputError


def test_photos_are_collected_from_folders_and_files_and_named_uniquely(tmp_path):
    from avatar_studio.pipelines.photo_batch import collect_photos, default_analysis_processes, folder_names

    (tmp_path / "a").mkdir()
    for name in ("b.JPG", "a.png", "notes.txt", "c.webp"):
        (tmp_path / "a" / name).write_bytes(b"x")
    (tmp_path / "a" / "nested").mkdir()
    single = tmp_path / "a.png"
    single.write_bytes(b"x")
    photos = collect_photos([tmp_path / "a", single])
    assert [p.name for p in photos] == ["a.png", "b.JPG", "c.webp", "a.png"]  # folder sorted, .txt left out
    assert folder_names(photos) == ["a", "b", "c", "a-2"]
    assert folder_names([tmp_path / "my photo (1).jpg", tmp_path / "..jpg"]) == ["my_photo_1", "photo"]
    with pytest.raises(UserInputError, match="no photo or folder"):
        collect_photos([tmp_path / "missing"])
    with pytest.raises(UserInputError, match="no photos"):
        collect_photos([tmp_path / "a" / "nested"])
    assert [default_analysis_processes(n, cores) for n, cores in ((20, 2), (20, 8), (3, 8), (1, 8), (20, 1))] == [1, 7, 3, 0, 0]


def test_usable_cores_follow_the_cgroup_quota_and_the_affinity(tmp_path, monkeypatch):
    """The batch's pool is sized by the cores a container grants (its CPU quota, its cpuset), not the
    host's count: 63 analysis processes in a 2-core container would take ~19 GB."""
    from avatarclip_core.device import usable_cores

    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(64)))  # a 64-core host, no cpuset
    assert usable_cores(str(tmp_path)) == 64  # no cgroup files: no quota
    (tmp_path / "cpu.max").write_text("max 100000\n")  # cgroup v2, unlimited
    assert usable_cores(str(tmp_path)) == 64
    (tmp_path / "cpu.max").write_text("150000 100000\n")  # docker run --cpus 1.5
    assert usable_cores(str(tmp_path)) == 2
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("400000\n")  # cgroup v1, 4 CPUs
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert usable_cores(str(tmp_path)) == 4
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert usable_cores(str(tmp_path)) == 64
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1})  # taskset / a cpuset of 2
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("800000\n")
    assert usable_cores(str(tmp_path)) == 2
    (tmp_path / "cpu.max").write_text("garbage")  # unreadable quota: the affinity alone
    assert usable_cores(str(tmp_path)) == 2


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("batch_in")
    astronaut = Image.fromarray(skimage.data.astronaut())
    astronaut.save(folder / "astronaut.png")
    (folder / "broken.jpg").write_text("not an image")
    astronaut.resize((64, 64)).save(folder / "tiny.png")  # a face far under the detector's minimum
    (folder / "again").mkdir()
    astronaut.save(folder / "again" / "astronaut.png")
    return folder


def test_a_batch_fits_every_good_photo_and_lists_each_failure_with_its_reason(photo_folder, tmp_path, capsys):
    from avatar_studio.cli.main import main
    from face2param.methods.fit import load_engine

    out = tmp_path / "out"
    status = main(["photo", str(photo_folder), str(photo_folder / "again" / "astronaut.png"), "-o", str(out),
                   "--method", "mean", "--face-png", "--processes", "2", "-q"])
    assert status == 1  # some photos failed, the others are done
    summary = json.loads((out / "summary.json").read_text())
    assert summary["photos"] == 4 and summary["succeeded"] == 2 and summary["analysis_processes"] == 2
    reasons = {json_row["photo"].rsplit("/", 1)[-1]: json_row["error"] for json_row in summary["failed"]}
    assert set(reasons) == {"broken.jpg", "tiny.png"}
    assert "not an image" in reasons["broken.jpg"] and "\n" not in reasons["broken.jpg"]
    assert "tiny.png" in reasons and reasons["tiny.png"]
    assert sorted(r["folder"] for r in summary["results"]) == ["astronaut", "astronaut-2"]
    spec = load_engine().spec
    for name in ("astronaut", "astronaut-2"):
        files = {p.name for p in (out / name).iterdir()}
        assert files == {"params.json", "provenance.json", "face.png"}  # no avatar.glb without --glb
        params = json.loads((out / name / "params.json").read_text())
        assert params["method"] == "mean" and set(params["continuous"]) == set(spec.continuous_names)
    assert not (out / "broken").exists() and not (out / "tiny").exists()
    assert str(out / "summary.json") in capsys.readouterr().out


def test_a_batch_in_one_process_writes_the_same_parameters(photo_folder, tmp_path):
    from avatar_studio.pipelines.photo import load_photo_config
    from avatar_studio.pipelines.photo_batch import run_photo_batch

    config = load_photo_config("preview", {"method": "mean"})
    summary = run_photo_batch([photo_folder / "astronaut.png", photo_folder / "broken.jpg"], config,
                              tmp_path / "out", processes=0)
    assert [r["folder"] for r in summary.succeeded] == ["astronaut"] and len(summary.failed) == 1
    assert {p.name for p in (tmp_path / "out" / "astronaut").iterdir()} == {"params.json", "provenance.json"}


def test_a_one_shot_batch_leaves_the_pixels_in_the_analysis_and_records_their_digest(photo_folder, tmp_path):
    """A fit that does not read the photo's pixels gets only their sha256 from the analysis process;
    provenance.json records the same digest as a single photo job does."""
    import dataclasses

    from avatar_studio.pipelines.photo import load_photo_config, run_photo_job
    from avatar_studio.pipelines.photo_batch import _analyse, run_photo_batch
    from face2param.faces.images import image_pixels_sha256, load_image
    from face2param.methods.fit import reads_photo_pixels

    config = load_photo_config("preview", {"method": "oneshot"})
    assert not reads_photo_pixels("oneshot", config) and not reads_photo_pixels("mean", config)
    assert not reads_photo_pixels("auto", config)  # the identity surrogate works on the descriptor
    with_network = dataclasses.replace(config, iterative=dataclasses.replace(config.iterative, identity_checkpoint="x.pt"))
    assert reads_photo_pixels("auto", with_network) and reads_photo_pixels("some_plugin_method", config)

    photo = photo_folder / "astronaut.png"
    analysis, pixels, digest = _analyse(str(photo), config.faces, keep_pixels=False)
    assert analysis is not None and pixels is None and digest == image_pixels_sha256(load_image(photo))
    assert _analyse(str(photo_folder / "broken.jpg"), config.faces, keep_pixels=False)[::2] == (None, None)

    import cv2

    before, during = cv2.getNumThreads(), []
    run_photo_batch([photo], config, tmp_path / "batch", processes=1,
                    on_photo=lambda *_: during.append(cv2.getNumThreads()))
    # beside an analysis process the fits run OpenCV on one thread, and the process gets its count back;
    # the single job below runs on the default count and writes the same parameters
    assert during == [1] and cv2.getNumThreads() == before
    single = run_photo_job(photo, config, tmp_path / "single")
    batch_inputs = json.loads((tmp_path / "batch" / "astronaut" / "provenance.json").read_text())["inputs"]
    single_inputs = json.loads((single / "provenance.json").read_text())["inputs"]
    assert batch_inputs["image_pixels_sha256"] == single_inputs["image_pixels_sha256"] == digest
    batch_params = json.loads((tmp_path / "batch" / "astronaut" / "params.json").read_text())
    assert batch_params["continuous"] == json.loads((single / "params.json").read_text())["continuous"]


def _opencv_threads_here() -> int:
    import cv2

    return cv2.getNumThreads()


def test_analysis_processes_run_opencv_on_one_thread():
    """One busy process per core: a second OpenCV thread in an analysis process only contends with the
    fitting process (avatarclip_core.device.opencv_threads)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from avatar_studio.pipelines.photo_batch import _warm_analysis_process

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_warm_analysis_process) as pool:
        assert pool.submit(_opencv_threads_here).result(timeout=120) == 1


def test_a_batch_analyses_here_while_the_pool_is_behind_and_keeps_the_order(photo_folder, monkeypatch):
    """When the next analysis is not ready, the fitting process analyses the next photo not yet sent
    (on 2 cores the analysis process is the slower stage). A pool held back by a blocker: the photos
    after its window are analysed here, at most 2 windows are held, and every result arrives in photo
    order, equal to the photo's own analysis, failures included."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import avatar_studio.pipelines.photo_batch as batch
    from face2param.faces.config import FaceAnalysisConfig

    analyse = batch._analyse
    ran_on: dict[str, list[str]] = {}

    def recorded(path, config, keep_pixels=True):
        ran_on.setdefault(path, []).append(threading.current_thread().name)
        return analyse(path, config, keep_pixels)

    monkeypatch.setattr(batch, "_analyse", recorded)
    photos = [photo_folder / "astronaut.png", photo_folder / "broken.jpg", photo_folder / "astronaut.png",
              photo_folder / "tiny.png", photo_folder / "again" / "astronaut.png", photo_folder / "astronaut.png"]
    config = FaceAnalysisConfig()
    release = threading.Event()
    with ThreadPoolExecutor(1, thread_name_prefix="pool") as pool:
        pool.submit(release.wait)  # the pool is busy until released: its photos wait
        threading.Timer(3.0, release.set).start()  # (released at last: the generator waits on it)
        results = list(batch._analysed_in_order([str(p) for p in photos], config, pool, window=1,
                                                keep_pixels=False, steal=True))
    here = [p for p, names in ran_on.items() if any(not n.startswith("pool") for n in names)]
    assert here, ran_on  # some photos were analysed in this thread while the pool was held back
    assert len(results) == len(photos)
    for photo, (analysis, pixels_or_error, digest) in zip(photos, results):
        expected = analyse(str(photo), config, False)
        assert (analysis is None) == (expected[0] is None)
        assert digest == expected[2] and pixels_or_error == expected[1]
        if analysis is not None:
            assert (analysis.landmarks_478 == expected[0].landmarks_478).all()


def test_an_existing_batch_folder_needs_force_and_nothing_is_written(photo_folder, tmp_path, capsys):
    from avatar_studio.cli.main import main

    out = tmp_path / "out"
    out.mkdir()
    assert main(["photo", str(photo_folder), "-o", str(out), "-q"]) == 2
    assert "already exists" in capsys.readouterr().err and not any(out.iterdir())


@pytest.mark.parametrize("batch", [True, False], ids=["batch-in-process", "one-photo-forked-analysis"])
def test_photo_runs_print_no_native_log_lines(photo_folder, tmp_path, batch):
    """mediapipe's TFLite/absl lines go to file descriptor 2 from C++ when its graphs are built and on
    their first inference; a batch analysed in its own process (the default on 2 cores), and the child
    that analyses one photo while the parent imports, printed them to the user's terminal. A fresh
    process: this one may have built the graphs already."""
    import os
    import subprocess
    import sys

    out = tmp_path / "out"
    photos = [str(photo_folder / "astronaut.png")] + ([str(photo_folder / "again" / "astronaut.png")] if batch else [])
    done = subprocess.run([sys.executable, "-m", "avatar_studio.cli", "photo", *photos, "-o", str(out),
                           "--method", "mean", *(["--processes", "0"] if batch else []), "-q"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "WARP_QUIET": "1"})
    assert done.returncode == 0, done.stderr
    if batch:
        assert json.loads((out / "summary.json").read_text())["succeeded"] == 2  # the graphs did run
    else:
        assert (out / "params.json").is_file() and done.stdout.strip() == str(out)
    for chatter in ("XNNPACK", "W0000", "absl", "inference_feedback_manager", "NORM_RECT"):
        assert chatter not in done.stderr, done.stderr


@pytest.mark.slow
def test_the_batch_bench_reports_a_steady_rate_from_its_larger_batch(monkeypatch):
    """`avatar bench`'s batch figures on 2 astronauts, 4 times over: every photo fitted, a steady rate taken
    from the larger batch's own photos (it and the start are positive and consistent with the totals)."""
    from avatar_studio.bench_batch import bench_photo_batch

    monkeypatch.delenv("AVATAR_BENCH_PHOTOS", raising=False)
    found = bench_photo_batch(count=2, repeat=4)
    assert found["photos"] == 2 and found["failed"] == 0 and found["batch_larger"]["failed"] == 0
    assert found["batch_larger"]["photos"] == 8
    steady, start = found["batch_steady_photos_per_s"], found["batch_start_s"]
    assert steady > 0 and start >= 0
    # the larger batch cannot have run faster than its steady part allows
    assert found["batch_larger"]["seconds"] >= 0.5 * 8 / steady
    # the CPU bound is the cores over one process's CPU a photo, and the ratio is steady over it
    bound = found["cpu_bound_photos_per_s"]
    assert bound > 0 and found["steady_over_cpu_bound"] == pytest.approx(steady / bound, rel=0.01, abs=0.002)
