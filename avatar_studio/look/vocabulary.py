"""What the look words can set, and the phrases that say it. Keys of FACE are the `fixed` keys the photo
fit and the face engine accept (face2param.faces.attribute_values); BODY sets continuous phenotypes
(0..1, Anny's meaning); GARMENTS are the outfit kinds. Phrases are matched as whole words; a word that
matches none is tried against all of them with the sentence encoder (parse.py)."""
from __future__ import annotations

FACE: dict[str, dict[str, tuple[str, ...]]] = {
    "gender": {"male": ("man", "male", "guy", "boy", "gentleman", "he", "his", "masculine", "father", "husband"),
               "female": ("woman", "female", "girl", "lady", "she", "her", "feminine", "mother", "wife")},
    "age_band": {"child": ("child", "kid", "little"), "young_adult": ("young", "teen", "teenager", "youthful"),
                 "adult": ("adult", "middle aged", "middle-aged", "grown up"),
                 "senior": ("old", "elderly", "senior", "aged", "grandfather", "grandmother", "grandpa", "grandma")},
    "hair_style": {"bald": ("bald", "shaved head", "no hair", "hairless"), "buzz": ("buzz cut", "buzzcut", "crew cut"),
                   "short": ("short hair",), "short_curly": ("short curly hair", "curly hair", "curls"),
                   "side_part": ("side part", "parted hair", "combed hair"), "bob": ("bob", "bob cut"),
                   "long": ("long hair", "long straight hair", "straight hair"),
                   "long_wavy": ("long wavy hair", "wavy hair", "long curly hair"),
                   "ponytail": ("ponytail", "pony tail"), "bun": ("bun", "hair bun", "topknot"),
                   "afro": ("afro",)},
    "beard": {"none": ("clean shaven", "clean-shaven", "shaved", "beardless", "no beard"),
              "stubble": ("stubble", "five o'clock shadow", "unshaven"), "moustache": ("moustache", "mustache"),
              "goatee": ("goatee",), "full": ("beard", "bearded", "full beard", "long beard", "whiskers")},
    "glasses": {"none": ("no glasses",), "rectangular": ("glasses", "spectacles", "eyeglasses", "bespectacled", "rectangular glasses"),
                "round": ("round glasses", "round spectacles")},
    "skin_tone": {"porcelain": ("porcelain skin", "very pale skin"), "ivory": ("pale skin", "fair skin", "ivory skin"),
                  "beige": ("light skin",), "sand": ("sand skin",), "olive": ("olive skin",),
                  "tan": ("tanned", "tanned skin", "tan skin"), "brown": ("brown skin",),
                  "umber": ("dark skin", "dark-skinned"), "deep": ("deep skin", "very dark skin"),
                  "ebony": ("ebony skin", "black skin")},
    "eyebrows": {"thin": ("thin eyebrows",), "thick": ("thick eyebrows",), "arched": ("arched eyebrows",),
                 "bushy": ("bushy eyebrows",)},
}
# hair and eye colour words: colour names mapped onto the engine's palettes (parse.py) plus these
HAIR_COLOUR_WORDS = {"blonde": "blonde", "blond": "blonde", "fair-haired": "blonde", "platinum": "platinum",
                     "ginger": "red", "redhead": "red", "red-haired": "red", "auburn": "auburn",
                     "brunette": "brown", "dark-haired": "dark_brown", "grey-haired": "grey", "gray-haired": "grey",
                     "white-haired": "white", "silver-haired": "grey"}
HAIR_COLOUR_OPTIONS = ("black", "dark_brown", "brown", "auburn", "red", "blonde", "platinum", "grey", "white")
EYE_COLOUR_OPTIONS = ("brown", "dark_brown", "hazel", "green", "blue", "grey")

BODY: dict[str, dict[float, tuple[str, ...]]] = {
    "height": {0.9: ("very tall", "giant"), 0.78: ("tall",), 0.25: ("short", "small", "petite"), 0.1: ("very short", "tiny")},
    "weight": {0.9: ("obese", "very heavy", "very fat"), 0.78: ("heavy", "fat", "chubby", "overweight", "plump", "stocky", "big"),
               0.25: ("slim", "thin", "skinny", "slender", "lean"), 0.1: ("very thin", "very skinny", "scrawny")},
    "muscle": {0.9: ("bodybuilder", "very muscular", "ripped"), 0.78: ("muscular", "athletic", "strong", "fit", "brawny"),
               0.25: ("weak", "frail", "soft")},
}

# outfit: kind -> (category, default colour name, phrases); a dress covers top and bottom
GARMENTS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "t_shirt": ("top", "white", ("t-shirt", "t shirt", "tshirt", "tee", "tee shirt")),
    "long_sleeve": ("top", "grey", ("long sleeve", "long-sleeve", "long sleeved top", "sweater", "jumper", "pullover", "cardigan")),
    "shirt": ("top", "white", ("shirt", "button-up", "button up shirt", "blouse", "dress shirt")),
    "jacket": ("top", "black", ("jacket", "coat", "blazer", "parka", "windbreaker", "suit jacket", "tuxedo", "vest")),
    "hoodie": ("top", "grey", ("hoodie", "hooded sweatshirt", "sweatshirt", "hoody")),
    "trousers": ("bottom", "black", ("trousers", "pants", "slacks", "chinos", "leggings", "sweatpants")),
    "jeans": ("bottom", "denim", ("jeans", "denims")),
    "shorts": ("bottom", "khaki", ("shorts",)),
    "skirt": ("bottom", "black", ("skirt", "miniskirt")),
    "dress": ("dress", "red", ("dress", "gown", "sundress")),
    "shoes": ("shoes", "black", ("shoes", "loafers", "sneakers", "trainers", "shoe", "sandals", "heels")),
    "boots": ("shoes", "brown", ("boots", "boot")),
}
# words that carry no look (articles, glue); everything else must be placed or reported
STOPWORDS = frozenset(
    "a an the with and in on of wearing wears who is has have having plus also some pair pairs his her their "
    "very person someone somebody that which dressed outfit clothes look looking sporting donning whose coloured "
    "colored any".split())
