"""Look from words, without CLIP: a look description ("an old bearded man with glasses, red jacket, blue
jeans, white sneakers") placed onto the face engine's attributes and slots (hair style and colour, beard,
glasses, skin tone, eye colour), the body's phenotypes and an outfit (garment kinds and colours). Every
choice carries its score and the words that made it; words it cannot place are reported, never dropped.
"""
from avatar_studio.look.parse import GarmentChoice, LookChoice, LookResult, parse_look

__all__ = ["GarmentChoice", "LookChoice", "LookResult", "parse_look"]
