"""Honest matching: how close a motion description is to the vocabulary the motion models know.

Every generated motion reports its best matches: the corpus generators (procedural generator or
imported clip group) whose labels the offline sentence encoder finds closest to the text, with the
cosine of the best label. A description whose best match is below `MotionGenConfig.match_threshold`
is out of vocabulary: the job still makes a motion (the nearest one) but says so in its warnings, or
fails with the same sentence when `motion.on_unknown` is "fail". The matching is independent of the
query method (a CLIP query picks poses by renders, but the motion VAE only knows the corpus).

The threshold is calibrated on prompts written for it (`calibrate`, tests/data/motion_match_prompts.json):
in-vocabulary paraphrases not used as labels, and out-of-vocabulary everyday actions.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from avatarclip_core.errors import UserInputError

ON_UNKNOWN = ("warn", "fail")


class MotionOutOfVocabularyError(UserInputError):
    """motion.on_unknown=fail and the description matches nothing the motion models know."""


@dataclass(frozen=True)
class MotionMatch:
    generator: str  # corpus generator (or imported clip group) name
    label: str  # its label closest to the text
    score: float  # sentence-encoder cosine between the text and that label


@dataclass(frozen=True)
class MatchReport:
    text: str
    matches: list[MotionMatch]  # best first, one per generator
    threshold: float

    @property
    def best(self) -> MotionMatch:
        return self.matches[0]

    @property
    def known(self) -> bool:
        return self.best.score >= self.threshold

    def warning(self) -> str | None:
        """The one-sentence warning (or error) for an out-of-vocabulary text; None when it is known."""
        if self.known:
            return None
        return (f"no motion close to '{self.text}'; nearest: '{self.best.label}' ({self.best.score:.2f}, "
                f"below the match threshold {self.threshold:.2f}), so the motion made is that one or a blend")

    def summary(self) -> str:
        """e.g. "walk 0.91, jog 0.74, run 0.70" (a job message, the CLI)."""
        return ", ".join(f"{m.generator} {m.score:.2f}" for m in self.matches)

    def to_dict(self) -> dict:
        return {"known": self.known, "threshold": self.threshold,
                "matches": [{**asdict(m), "score": round(m.score, 4)} for m in self.matches]}


def generator_scores(text_emb: torch.Tensor, label_emb: torch.Tensor, label_index: torch.Tensor,
                     clip_generators: list[str]) -> dict[str, tuple[float, int]]:
    """Per generator: (best cosine, label index) over the labels of all its clips.

    text_emb (D,), label_emb (U, D) unit rows, label_index (C, M) -1 padded, clip_generators (C,)."""
    cos = label_emb.float() @ text_emb.float().reshape(-1)
    best: dict[str, tuple[float, int]] = {}
    for clip, generator in enumerate(clip_generators):
        for j in label_index[clip].tolist():
            if j >= 0 and (generator not in best or float(cos[j]) > best[generator][0]):
                best[generator] = (float(cos[j]), j)
    return best


def match_report(text: str, text_emb: torch.Tensor, label_emb: torch.Tensor, label_index: torch.Tensor,
                 labels: list[str], clip_generators: list[str], threshold: float, top: int = 3) -> MatchReport:
    scores = generator_scores(text_emb, label_emb, label_index, clip_generators)
    ranked = sorted(scores.items(), key=lambda kv: -kv[1][0])[:max(1, top)]
    return MatchReport(text, [MotionMatch(g, labels[j], s) for g, (s, j) in ranked], threshold)


def match_text(text: str, config) -> MatchReport:
    """The match report of `text` against the vocabulary of `config`'s (MotionGenConfig) artifacts."""
    from avatarclip_core.motion.generate import check_motion_text, get_motion_artifacts, text_similarities

    text = check_motion_text(text)
    art = get_motion_artifacts(config)
    label_emb, text_emb = text_similarities(art, text)
    return match_report(text, text_emb, label_emb, art.library_label_index, art.labels,
                        [c["generator"] for c in art.meta["library"]], config.match_threshold, config.match_top)


@dataclass(frozen=True)
class Vocabulary:
    """Labels of some generators and their sentence embeddings: what a model trained on them knows."""
    labels: list[str]
    label_emb: torch.Tensor  # (U, E) unit rows
    label_index: torch.Tensor  # (G, M) label indices per generator, -1 padded
    generators: list[str]

    def match(self, text: str, text_emb: torch.Tensor, threshold: float, top: int = 3) -> MatchReport:
        """`match_text`'s report of `text` (embedded as `text_emb`) against this vocabulary."""
        return match_report(text, text_emb, self.label_emb, self.label_index, self.labels, self.generators,
                            threshold, top)


def artifacts_vocabulary(config, encoder=None) -> Vocabulary:
    """The vocabulary of `config`'s (MotionGenConfig) artifacts as `match_text` matches against it: their
    labels and stored embeddings (re-embedded when `encoder`, default the offline sentence encoder, is
    another model) over their clip library's generators."""
    from avatarclip_core.motion.generate import get_motion_artifacts

    art = get_motion_artifacts(config)
    if encoder is None:
        from avatarclip_core.clip.text_encoder import TextEncoder

        encoder = TextEncoder()
    label_emb = art.label_emb if encoder.model_id == art.meta.get("text_model") else encoder.encode(art.labels)
    return Vocabulary(art.labels, label_emb, art.library_label_index, [c["generator"] for c in art.meta["library"]])


def procedural_vocabulary(encoder=None, names: list[str] | None = None) -> Vocabulary:
    """The procedural generators' labels as `avatar train motion` stores them (both hands' wordings of a
    handed one), embedded with `encoder` (default: the offline sentence encoder): the vocabulary of a
    model trained on the current library, before the packaged artifacts are retrained on it."""
    from avatarclip_core.motion.corpus.library import generator_labels, generator_names

    names = list(names or generator_names())
    per_generator = [generator_labels(name) for name in names]
    labels = list(dict.fromkeys(label for group in per_generator for label in group))
    position = {label: i for i, label in enumerate(labels)}
    index = torch.full((len(names), max(map(len, per_generator))), -1, dtype=torch.long)
    for g, group in enumerate(per_generator):
        index[g, :len(group)] = torch.tensor([position[label] for label in group])
    if encoder is None:
        from avatarclip_core.clip.text_encoder import TextEncoder

        encoder = TextEncoder()
    return Vocabulary(labels, encoder.encode(labels), index, names)


def check_on_unknown(report: MatchReport, on_unknown: str) -> list[str]:
    """The warnings for `report`; raises MotionOutOfVocabularyError instead when on_unknown is "fail"."""
    if on_unknown not in ON_UNKNOWN:
        raise UserInputError(f"motion.on_unknown must be one of {', '.join(ON_UNKNOWN)}, got {on_unknown!r}")
    message = report.warning()
    if message is None:
        return []
    if on_unknown == "fail":
        raise MotionOutOfVocabularyError(message.split(", so the motion")[0] + ") and motion.on_unknown=fail")
    return [message]


@dataclass(frozen=True)
class Calibration:
    threshold: float  # midpoint of the gap (or the fewest-errors cut when the sets overlap)
    lowest_in: float  # lowest best-match score of the in-vocabulary prompts
    highest_out: float  # highest best-match score of the out-of-vocabulary prompts
    errors: int  # prompts on the wrong side of the threshold

    @property
    def margin(self) -> float:
        return self.lowest_in - self.highest_out


def calibrate(in_scores: list[float], out_scores: list[float]) -> Calibration:
    """The threshold separating in-vocabulary from out-of-vocabulary best-match scores."""
    if not in_scores or not out_scores:
        raise UserInputError("calibration needs in- and out-of-vocabulary prompts")
    lo, hi = min(in_scores), max(out_scores)
    if lo > hi:
        return Calibration(round((lo + hi) / 2, 3), lo, hi, 0)
    cuts = sorted(set(in_scores) | set(out_scores))

    def errors(t: float) -> int:
        return sum(s < t for s in in_scores) + sum(s >= t for s in out_scores)

    best = min(cuts, key=errors)
    return Calibration(round(best, 3), lo, hi, errors(best))


def load_prompts(path: str | Path) -> tuple[dict[str, str], list[str]]:
    """{in-vocabulary prompt: expected generator}, [out-of-vocabulary prompts] from a JSON file."""
    data = json.loads(Path(path).read_text())
    return dict(data["in_vocabulary"]), list(data["out_of_vocabulary"])


def known_prompts(inside: dict[str, str], config) -> dict[str, str]:
    """The in-vocabulary prompts whose generator `config`'s artifacts were trained on (the others are
    out of that set's vocabulary until it is retrained)."""
    from avatarclip_core.motion.generate import get_motion_artifacts

    trained = {c["generator"] for c in get_motion_artifacts(config).meta["library"]}
    return {text: g for text, g in inside.items() if g in trained}


def main(argv: list[str] | None = None) -> int:
    """python -m avatarclip_core.motion.matching PROMPTS.json: scores, retrieval and the calibrated threshold."""
    import argparse

    from avatarclip_core.motion.gen_config import MotionGenConfig

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("prompts")
    parser.add_argument("--artifacts", default="preview")
    args = parser.parse_args(argv)
    config = MotionGenConfig(artifacts=args.artifacts)
    inside, outside = load_prompts(args.prompts)
    inside = known_prompts(inside, config)
    in_scores, out_scores, wrong = [], [], []
    for text, expected in inside.items():
        report = match_text(text, config)
        in_scores.append(report.best.score)
        if report.best.generator != expected:
            wrong.append(f"{text!r}: {report.best.generator} (expected {expected})")
        print(f"in   {report.best.score:.3f} {text!r} -> {report.summary()}")
    for text in outside:
        report = match_text(text, config)
        out_scores.append(report.best.score)
        print(f"out  {report.best.score:.3f} {text!r} -> {report.summary()}")
    cal = calibrate(in_scores, out_scores)
    print(f"{len(inside)} in, {len(outside)} out: lowest in {cal.lowest_in:.3f}, highest out {cal.highest_out:.3f}, "
          f"margin {cal.margin:.3f}, threshold {cal.threshold:.3f}, errors {cal.errors}; "
          f"top-1 retrieval {len(inside) - len(wrong)}/{len(inside)}")
    for line in wrong:
        print("  wrong:", line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
