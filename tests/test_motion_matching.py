"""Honest matching of motion descriptions: best matches and scores in every generated motion, a
calibrated threshold below which the job warns (or fails with motion.on_unknown=fail)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from avatarclip_core.errors import UserInputError
from avatarclip_core.motion.gen_config import MotionGenConfig
from avatarclip_core.motion.matching import (
    MatchReport,
    MotionMatch,
    MotionOutOfVocabularyError,
    calibrate,
    check_on_unknown,
    known_prompts,
    load_prompts,
    match_text,
)

PROMPTS = Path(__file__).parent / "data" / "motion_match_prompts.json"
pytestmark = pytest.mark.usefixtures("offline_hub")


@pytest.fixture
def offline_hub(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_calibration_takes_the_middle_of_the_gap_or_the_fewest_errors():
    separated = calibrate([0.7, 0.9, 0.65], [0.3, 0.5])
    assert separated.threshold == pytest.approx(0.575) and separated.errors == 0
    assert separated.margin == pytest.approx(0.15)
    overlapping = calibrate([0.7, 0.9, 0.45], [0.3, 0.5, 0.55])
    assert overlapping.threshold == 0.7 and overlapping.errors == 1 and overlapping.margin < 0  # 0.45 below
    with pytest.raises(UserInputError):
        calibrate([], [0.2])


def _report(score: float) -> MatchReport:
    return MatchReport("play the guitar", [MotionMatch("dance_sway", "sway to the music", score),
                                           MotionMatch("jog", "jog", 0.38)], threshold=0.6)


def test_an_unknown_text_warns_or_fails_with_the_nearest_motion_named():
    unknown = _report(0.503)
    assert not unknown.known
    warning = unknown.warning()
    assert warning.startswith("no motion close to 'play the guitar'; nearest: 'sway to the music' (0.50")
    assert check_on_unknown(unknown, "warn") == [warning]
    with pytest.raises(MotionOutOfVocabularyError, match="no motion close to 'play the guitar'.*on_unknown=fail"):
        check_on_unknown(unknown, "fail")
    with pytest.raises(UserInputError, match="on_unknown"):
        check_on_unknown(unknown, "ignore")
    known = _report(0.8)
    assert known.known and known.warning() is None and check_on_unknown(known, "fail") == []
    assert known.to_dict()["matches"][0] == {"generator": "dance_sway", "label": "sway to the music", "score": 0.8}
    assert known.summary() == "dance_sway 0.80, jog 0.38"


# Measured on the packaged preview set (all 92 generators, 2026-12-06) with the default threshold (see
# the test below): prompts on the wrong side ("push a heavy door" 0.46 in, "sweep the floor" 0.68 out;
# 58 of 59 in-vocabulary prompts known, 21 of 22 out of vocabulary warn) and in-vocabulary prompts whose
# expected generator is not the first match (none of 59).
ALLOWED_THRESHOLD_ERRORS = 2
ALLOWED_TOP1_MISSES = 2


def test_the_default_threshold_separates_the_calibration_prompts():
    config = MotionGenConfig()
    inside, outside = load_prompts(PROMPTS)
    assert known_prompts(inside, config) == inside  # the packaged set was trained on every generator
    assert len(inside) >= 15 and len(outside) >= 15
    reports = {text: match_text(text, config) for text in [*inside, *outside]}
    in_scores = [reports[t].best.score for t in inside]
    out_scores = [reports[t].best.score for t in outside]
    cal = calibrate(in_scores, out_scores)
    print(f"lowest in {cal.lowest_in:.3f}, highest out {cal.highest_out:.3f}, calibrated {cal.threshold:.3f} "
          f"({cal.errors} errors), configured {config.match_threshold}")
    assert abs(cal.threshold - config.match_threshold) < 0.02  # the configured value is the calibrated one
    known_in = sum(reports[t].known for t in inside)
    warned_out = sum(not reports[t].known for t in outside)
    assert known_in >= 15 and warned_out >= 15
    assert (len(inside) - known_in) + (len(outside) - warned_out) <= ALLOWED_THRESHOLD_ERRORS
    top1 = [t for t, g in inside.items() if reports[t].best.generator != g]
    assert len(top1) <= ALLOWED_TOP1_MISSES, [(t, reports[t].summary()) for t in top1]
    for text, expected in inside.items():  # held-out paraphrases retrieve their generator among the best 3
        assert expected in [m.generator for m in reports[text].matches], (text, reports[text].summary())


@pytest.mark.slow
def test_a_job_reports_matches_and_warns_or_fails_on_an_unknown_motion(tmp_path):
    from avatar_studio.pipelines.sliders import load_sliders_config, run_sliders_job

    config = load_sliders_config("preview", {"motion.name": "play the guitar", "motion_gen.iterations": 2})
    out = run_sliders_job({}, config, tmp_path / "guitar")
    params = json.loads((out / "params.json").read_text())
    matches = params["motion_source"]["matches"]
    assert matches["known"] is False and len(matches["matches"]) == 3
    assert matches["matches"][0]["score"] < matches["threshold"]
    assert any(w.startswith("no motion close to 'play the guitar'; nearest: ") for w in params["warnings"])

    failing = load_sliders_config("preview", {"motion.name": "play the guitar", "motion.on_unknown": "fail"})
    with pytest.raises(MotionOutOfVocabularyError, match="no motion close to 'play the guitar'"):
        run_sliders_job({}, failing, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
