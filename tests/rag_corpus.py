"""A small labelled corpus for retrieval-quality tests: 14 documents on distinct topics,
and queries each labelled with the one document that answers it. Half the queries
share key words with their document; half are paraphrases that share few."""

from __future__ import annotations

from pathlib import Path

LABELLED_DOCS: dict[str, str] = {
    "espresso.md": (
        "# Descaling an espresso machine\n\n"
        "Hard water leaves limescale in the boiler and the group head. Every two months, "
        "dissolve 30 g of citric acid in a litre of water, fill the tank, and run half of it "
        "through the steam wand and half through the group head. Let the machine rest for "
        "twenty minutes, then flush with two tanks of clean water before pulling a shot."
    ),
    "bicycle.md": (
        "# Bicycle tyre pressure\n\n"
        "Road tyres run at 80 to 100 psi, mountain bike tyres at 25 to 35 psi. Lighter "
        "riders can use less. Check the pressure weekly with a gauge on a floor pump: tubes "
        "lose air through the rubber even without a puncture. Too little pressure causes "
        "pinch flats when the rim hits a kerb."
    ),
    "sourdough.md": (
        "# Feeding a sourdough starter\n\n"
        "Discard all but 50 g of starter, then add 50 g of flour and 50 g of water and stir. "
        "Keep it at room temperature and feed it twice a day; it is ready to bake with when "
        "it doubles within six hours and smells pleasantly sour. A starter kept in the "
        "fridge needs feeding once a week."
    ),
    "tomatoes.md": (
        "# Growing tomatoes\n\n"
        "Sow tomato seeds indoors six to eight weeks before the last frost. Transplant the "
        "seedlings deep, burying the stem up to the first leaves, in a spot with at least "
        "eight hours of sun. Water at the base, never the leaves, to prevent blight, and "
        "pinch out side shoots on cordon varieties."
    ),
    "passwords.md": (
        "# Choosing passwords\n\n"
        "Use a password manager to generate a long random password for every account, and "
        "never reuse one across sites. Turn on two-factor authentication, preferably with "
        "an authenticator app or a hardware security key rather than SMS codes, which can "
        "be intercepted through SIM swapping."
    ),
    "git_rebase.md": (
        "# Rewriting history with git rebase\n\n"
        "Run `git rebase -i HEAD~3` to edit the last three commits: mark a commit `squash` "
        "to merge it into the previous one, `reword` to change its message or `drop` to "
        "delete it. Never rebase commits that others have already pulled; use "
        "`git push --force-with-lease` after rebasing your own branch."
    ),
    "sleep.md": (
        "# Sleeping better\n\n"
        "Adults need seven to nine hours of sleep. Go to bed and wake up at the same time "
        "every day, keep the bedroom dark and cool, and avoid caffeine after two in the "
        "afternoon. Screens in the last hour before bed delay melatonin and make it harder "
        "to fall asleep."
    ),
    "cat_food.md": (
        "# Feeding a cat\n\n"
        "Cats are obligate carnivores and need taurine, which only animal protein provides. "
        "An adult cat eats about 200 kilocalories a day, split into two or three meals. "
        "Never give cats onions, garlic, chocolate or grapes: they are toxic. Fresh water "
        "should always be available, ideally from a fountain."
    ),
    "tax_deadline.md": (
        "# Filing the annual tax return\n\n"
        "The income tax return is due by the 30th of April. Self-employed people must keep "
        "receipts for business expenses for six years. Filing late costs a penalty of 100 "
        "euros plus interest on any unpaid tax; an extension can be requested online before "
        "the deadline."
    ),
    "python_venv.md": (
        "# Python virtual environments\n\n"
        "Create an isolated environment with `python -m venv .venv` and activate it with "
        "`source .venv/bin/activate`. Packages installed with pip then stay inside the "
        "project instead of the system interpreter. Record dependencies in a requirements "
        "file or pyproject.toml so others can recreate the environment."
    ),
    "first_aid_burn.md": (
        "# First aid for burns\n\n"
        "Cool a burn under cool running water for twenty minutes, remove rings and watches "
        "before the skin swells, and cover it loosely with cling film. Do not apply ice, "
        "butter or toothpaste. Seek medical help for burns larger than the hand, on the "
        "face, or when the skin is white or charred."
    ),
    "marathon.md": (
        "# Training for a marathon\n\n"
        "Build up over sixteen to twenty weeks, increasing weekly mileage by no more than "
        "ten percent. Most runs should be slow enough to hold a conversation; add one long "
        "run each weekend, peaking at about 32 km three weeks before race day, then taper. "
        "Practise eating gels during long runs."
    ),
    "northern_lights.md": (
        "# Seeing the aurora borealis\n\n"
        "The northern lights appear when charged particles from the sun hit the upper "
        "atmosphere. The best chances are between September and March, far from city "
        "lights, on clear nights with a high KP index. Northern Norway, Iceland and Finnish "
        "Lapland lie under the auroral oval."
    ),
    "wifi.md": (
        "# Fixing slow Wi-Fi\n\n"
        "Place the router high and central, away from microwaves and thick walls. Switch to "
        "the 5 GHz band for speed near the router and 2.4 GHz for range. Choose a less "
        "crowded channel, update the router firmware, and restart it if throughput drops."
    ),
}

# (query, the document that answers it)
LABELLED_QUERIES: list[tuple[str, str]] = [
    # keyword queries
    ("how do I descale the espresso machine", "espresso.md"),
    ("bicycle tyre pressure psi", "bicycle.md"),
    ("feeding a sourdough starter", "sourdough.md"),
    ("when to sow tomato seeds", "tomatoes.md"),
    ("password manager two-factor authentication", "passwords.md"),
    ("git rebase squash commits", "git_rebase.md"),
    ("how many hours of sleep do adults need", "sleep.md"),
    ("what is toxic to cats", "cat_food.md"),
    ("tax return deadline penalty", "tax_deadline.md"),
    ("python venv activate", "python_venv.md"),
    ("first aid for a burn", "first_aid_burn.md"),
    ("marathon training weekly mileage", "marathon.md"),
    ("where to see the aurora borealis", "northern_lights.md"),
    ("slow wifi router channel", "wifi.md"),
    # paraphrases
    ("remove calcium deposits from my coffee maker", "espresso.md"),
    ("how much air should I put in my bike wheels", "bicycle.md"),
    ("keeping wild yeast for bread alive", "sourdough.md"),
    ("protecting online accounts from hackers", "passwords.md"),
    ("combine several commits into one", "git_rebase.md"),
    ("I can't fall asleep at night", "sleep.md"),
    ("what should my kitten eat", "cat_food.md"),
    ("I scalded my hand with boiling water", "first_aid_burn.md"),
    ("preparing to run 42 kilometres", "marathon.md"),
    ("my internet connection at home is sluggish", "wifi.md"),
]


def write_labelled_corpus(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in LABELLED_DOCS.items():
        (root / name).write_text(text + "\n")
    return root


def recall_at_k(retriever, queries: list[tuple[str, str]], k: int = 5):
    """Share of queries whose labelled document is among the top k; and the misses."""
    misses = []
    for query, expected in queries:
        paths = [Path(hit.path).name for hit in retriever.search(query, k)]
        if expected not in paths:
            misses.append((query, expected, paths))
    return 1 - len(misses) / len(queries), misses
