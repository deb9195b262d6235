"""Labels of the Bandai-Namco Research Motion dataset 1 (an optional corpus, loaded by path).

The dataset (github.com/BandaiNamcoResearchInc/Bandai-Namco-Research-Motiondataset, CC BY-NC 4.0:
non-commercial, so never bundled or a default) is 174 BVH clips (30 fps, cm, Y up, one skeleton)
named `dataset-1_{content}_{style}_{id}.bvh`, with the vocabularies in `cfg/content_label.txt` and
`cfg/style_label.txt` (lines such as `dataset-1_walk-back`, `dataset-1_not-confident`). A folder is
recognised by those two files (beside the BVH files or one level up, so both the dataset folder and
its `data/` folder load). Each clip gets text descriptions of its action and style ("walk forward
angrily", "walk forward in an angry style", "an angry person walks forward").

Directions are the capture stage's: +Z is its front, "walk-left" is walking to the performer's left
across the stage (body turned that way, chest half to the front), so such clips are loaded without
turning their first frame to face +Z (loader.py), or the label would describe another motion.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CFG_FILES = ("content_label.txt", "style_label.txt")

# content -> (imperative, third person). Gestures were named by looking at the clips: `bye` waves
# one raised hand, `byebye` both, `guide` holds one hand out forward, `respond` raises a hand high.
ACTIONS: dict[str, tuple[str, str]] = {
    "walk": ("walk forward", "walks forward"),
    "run": ("run forward", "runs forward"),
    "dash": ("sprint forward", "sprints forward"),
    "walk-back": ("walk backwards", "walks backwards"),
    "walk-left": ("walk to the left", "walks to the left"),
    "walk-right": ("walk to the right", "walks to the right"),
    "bow": ("bow", "bows"),
    "bye": ("wave goodbye with one hand", "waves goodbye with one hand"),
    "byebye": ("wave goodbye with both hands", "waves goodbye with both hands"),
    "guide": ("show the way with one hand", "shows the way with one hand"),
    "respond": ("raise a hand to answer", "raises a hand to answer"),
    "call": ("call someone over", "calls someone over"),
    "punch": ("punch", "punches"),
    "kick": ("kick", "kicks"),
    "slash": ("slash with a sword", "slashes with a sword"),
    "dance-long": ("dance", "dances"),
    "dance-short": ("dance", "dances"),
}
# style -> (adverbial, "in a ... style", subject). "chimpira" is Japanese for a small-time thug.
STYLES: dict[str, tuple[str, str, str]] = {
    "normal": ("normally", "in a normal style", "a person"),
    "happy": ("happily", "in a happy style", "a happy person"),
    "sad": ("sadly", "in a sad style", "a sad person"),
    "angry": ("angrily", "in an angry style", "an angry person"),
    "proud": ("proudly", "in a proud style", "a proud person"),
    "not-confident": ("timidly", "in an unconfident style", "a timid person"),
    "masculinity": ("in a masculine way", "in a masculine style", "a masculine person"),
    "feminine": ("in a feminine way", "in a feminine style", "a feminine person"),
    "childish": ("like a child", "in a childish style", "a child"),
    "old": ("like an old person", "in an elderly style", "an old person"),
    "tired": ("wearily", "in a tired style", "a tired person"),
    "active": ("energetically", "in an energetic style", "an energetic person"),
    "musical": ("like in a musical", "in a musical theatre style", "a musical performer"),
    "giant": ("like a giant", "in a giant's style", "a giant"),
    "chimpira": ("like a thug", "in a thuggish style", "a street thug"),
}


@dataclass(frozen=True)
class Vocabulary:
    contents: tuple[str, ...]
    styles: tuple[str, ...]


def read_vocabulary(folder: Path) -> Vocabulary | None:
    """The dataset's content and style names when `folder` (or its parent) holds its cfg files."""
    for base in (folder, folder.parent):
        paths = [base / "cfg" / name for name in CFG_FILES]
        if all(p.is_file() for p in paths):
            contents, styles = (tuple(_names(p)) for p in paths)
            return Vocabulary(contents, styles) if contents and styles else None
    return None


def _names(path: Path) -> list[str]:
    """`dataset-1_walk-back` -> `walk-back` (the dataset prefix is everything before the first '_')."""
    return [line.strip().split("_", 1)[-1] for line in path.read_text().splitlines() if line.strip()]


def parse_name(stem: str, vocabulary: Vocabulary) -> tuple[str, str] | None:
    """(content, style) of `dataset-1_walk-back_not-confident_001`, or None if it is not such a name."""
    parts = stem.split("_")
    if len(parts) != 4 or parts[1] not in vocabulary.contents or parts[2] not in vocabulary.styles:
        return None
    return parts[1], parts[2]


def describe(content: str, style: str) -> list[str]:
    """Text descriptions, canonical first. Names outside the tables (a later dataset version) still
    read as words: "raise-up-both-hands" -> "raise up both hands"."""
    imperative, third = ACTIONS.get(content, (content.replace("-", " "), None))
    style_words = style.replace("-", " ")
    adverb, in_style, subject = STYLES.get(style, (f"in a {style_words} way", f"in a {style_words} style", None))
    labels = [imperative, f"{imperative} {adverb}"] if style == "normal" else [
        f"{imperative} {adverb}", f"{imperative} {in_style}"]
    return labels + ([f"{subject} {third}"] if third and subject else [])
