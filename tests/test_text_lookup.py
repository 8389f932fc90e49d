"""Text lookup: the start of a copied value, spelled in the output's own tokens.

A document's ` Bristol` (one token after a space) and a JSON value's `B` `ristol` (after
a quote) are the same text in different tokens, so token n-grams cannot draft it; the
text drafter can, and the runtime's output stays what it would be without drafts."""

from __future__ import annotations

import pytest

from agent import load_model
from agent.prompt_lookup import PromptLookup
from agent.runtime import Model
from agent.text_lookup import TextLookup
from tests.lookup_helpers import extract_without_and_with_drafts

DOCUMENT = "The Bristol Python meetup is on 14 March 2025 at the Engine Shed."
SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 60},
        "place": {"type": "string", "maxLength": 60},
    },
    "required": ["title", "place"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def large() -> Model:
    """A real-size vocabulary (cl100k), where words after a space are single tokens."""
    return load_model("tiny-large-vocab")


def _drafter(model: Model, prompt: list[int]) -> TextLookup:
    vocabulary = model.vocabulary
    return TextLookup(prompt, vocabulary.token_bytes, model.encode_fragment, vocabulary.special_ids)


def test_a_value_is_drafted_in_the_spelling_the_output_uses(large):
    prompt = large.encode_fragment(DOCUMENT)
    output = large.encode_fragment('{"title":"B')
    drafter = _drafter(large, prompt)
    drafter.extend(output)
    draft = drafter.draft(3)
    # The output spells the value from its quote on, as it would be tokenised there.
    whole = large.encode_fragment('{"title":"Bristol Python meetup is')
    assert whole[: len(output)] == output
    assert draft == whole[len(output) : len(output) + 3]
    assert large.vocabulary.decode(draft) == "ristol Python meetup"
    # Token n-grams find nothing: the document's tokens are not these.
    tokens = PromptLookup(prompt)
    tokens.extend(output)
    assert tokens.draft(3) == []


def test_the_value_restarts_after_each_delimiter(large):
    drafter = _drafter(large, large.encode_fragment(DOCUMENT))
    drafter.extend(large.encode_fragment('{"title":"Bristol Python meetup","place":"'))
    assert drafter.draft(4) == []  # nothing of the new value yet
    drafter.extend(large.encode_fragment("Engine"))
    assert large.vocabulary.decode(drafter.draft(2)) == " Shed."


def test_no_draft_for_unseen_text_digits_or_no_room(large):
    drafter = _drafter(large, large.encode_fragment(DOCUMENT))
    drafter.extend(large.encode_fragment('{"title":"Leeds'))
    assert drafter.draft(4) == []  # not in the prompt
    drafter.extend(large.encode_fragment('","day":"14'))
    assert drafter.draft(4) == []  # digits recur everywhere; dates are reformatted
    drafter.extend(large.encode_fragment('","title":"Bristol'))
    assert drafter.draft(0) == []
    assert drafter.draft(1) != []


def test_a_value_ending_inside_a_token_of_the_document_drafts_nothing():
    # Toy vocabulary: "ab" is one token, so "a" then "b..." cannot be spelled from "a".
    pieces = [b'"', b"a", b"b", b"ab", b"c", b"abc"]

    def encode(text: str) -> list[int]:  # longest match first
        out, rest = [], text.encode()
        while rest:
            best = max(
                (i for i, p in enumerate(pieces) if rest.startswith(p)),
                key=lambda i: len(pieces[i]),
            )
            out.append(best)
            rest = rest[len(pieces[best]) :]
        return out

    drafter = TextLookup(encode("abcab"), pieces, encode)
    drafter.extend([0, 1])  # '"a'
    # The latest "a" is the prompt's last "ab", one token: no boundary after "a".
    assert drafter.draft(3) == []
    drafter.extend([2])  # '"ab'
    assert drafter.draft(3) == []  # its latest occurrence ends the prompt: nothing follows


def test_a_constrained_extraction_is_the_same_with_value_drafts(large):
    """On random weights few drafts are taken, but each is checked as a sampled token
    is: the output must not change."""
    plain, drafted = extract_without_and_with_drafts(large, DOCUMENT, SCHEMA, 80)
    assert drafted.text == plain.text
    assert drafted.stats.forced_tokens == plain.stats.forced_tokens
    assert plain.stats.draft_tokens == 0


def test_a_value_built_around_a_copied_piece_drafts_from_its_last_word(large):
    drafter = _drafter(
        large, large.encode_fragment("Write to maria.gomez@acme-robotics.example today.")
    )
    drafter.extend(large.encode_fragment('{"site":"https://www.acme'))
    # The value since the colon, "//www.acme", never occurred; its last word did.
    assert large.vocabulary.decode(drafter.draft(3)).startswith("-robotics")


def test_a_long_value_keeps_its_tail_and_still_drafts(large):
    sentence = "the quick brown fox jumps over the lazy dog and runs away " * 6
    drafter = _drafter(large, large.encode_fragment(f"Note: {sentence}end of note."))
    drafter.extend(large.encode_fragment('{"note":"' + sentence.strip()))
    assert len(drafter.value) <= 128
    assert large.vocabulary.decode(drafter.draft(3)).startswith(" end of")
