"""The motion clip's controls on every form that picks a motion (motion/game_clip.py): its length in
seconds and whether it loops. They travel as the REST keys "seconds" and "loop" (web.jobs.clip_overrides
-> the config overrides motion.seconds and motion.loop, checked at submit like any override); the range
and the choices are config.limits' (MAX_CLIP_SECONDS, CLIP_LOOPS)."""
from __future__ import annotations

from typing import Any

import gradio as gr

from avatarclip_core.config.limits import CLIP_LOOPS, MAX_CLIP_SECONDS


def clip_controls(prefix: str) -> tuple[gr.Number, gr.Radio]:
    """A "Clip length (s)" number and a "Loop" choice in one row (elem ids <prefix>-seconds, <prefix>-loop)."""
    with gr.Row():
        seconds = gr.Number(value=0, minimum=0, maximum=MAX_CLIP_SECONDS, step=0.5, label="Clip length (s)",
                            info=f"0-{MAX_CLIP_SECONDS:g}; 0: as made. A loop repeats whole cycles",
                            elem_id=f"{prefix}-seconds", min_width=160)
        loop = gr.Radio(list(CLIP_LOOPS), value="auto", label="Loop (last pose = first)",
                        info="auto: walks, runs and idles loop", elem_id=f"{prefix}-loop", min_width=160)
    return seconds, loop


def clip_request(motion: str, seconds: Any, loop: Any) -> dict:
    """The controls' values as request keys; none without a motion (nothing to shape) or when cleared."""
    if not motion or motion == "none":
        return {}
    out = {} if seconds is None or seconds == "" else {"seconds": seconds}
    return out | ({"loop": loop} if loop else {})
