"""The one home of user-facing names and limits that processes without torch check too (the job
kinds at submit, the web page, the CLI): plain constants (and the job-id pattern, compiled once).

Libraries and the app import them from here; nothing else spells them out.
"""
from __future__ import annotations

import re

# built-in procedural motions (motion/procedural.py builds its generators from these names; any other
# motion text is a description that text -> motion generates); the page lists them in this order
BUILTIN_MOTIONS: tuple[str, ...] = ("idle", "wave", "walk")
# the longest motion clip a job makes (motion.seconds; motion/game_clip.py)
MAX_CLIP_SECONDS = 60.0
# motion.loop: auto (locomotion cycles and idles loop), on, off; the CLI's --loop and the page's choice
CLIP_LOOPS: tuple[str, ...] = ("auto", "on", "off")
# photo -> parameters methods (face2param.methods.fit); `auto` picks iterative or oneshot per photo
PHOTO_METHODS: tuple[str, ...] = ("auto", "oneshot", "iterative", "mean")
# shape / appearance prompts and motion descriptions (CLIP's context is 77 tokens: ~300 characters)
MAX_PROMPT_CHARS = 300
# photo uploads (AVATAR_UPLOAD_MAX_BYTES overrides it per deployment)
UPLOAD_MAX_BYTES = 10 * 1024 * 1024
# job ids: what the job store makes (<UTC time>-<12 hex>) and what the job kinds, the store and the web
# layer accept as a job id (a folder name under <data>/jobs/: no dots, slashes or leading dash)
JOB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$")
