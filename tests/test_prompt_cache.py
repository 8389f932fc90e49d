"""The prompt-cache pool: several conversations, each extending its own cache; LRU within
a count and a byte budget; trimmable caches lend a trimmed copy for a shared prefix."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from agent import SamplingParams
from agent.prompt_cache import PromptCachePool

GREEDY = SamplingParams.greedy()


@dataclass
class FakeLayer:
    """A cache layer as the pool sees one: its size, whether it can be trimmed."""

    nbytes: int = 100
    trimmable: bool = False

    def is_trimmable(self) -> bool:
        return self.trimmable


@dataclass
class State:
    cache: list[FakeLayer] | None = None
    tokens: list[int] = field(default_factory=list)
    history_text: str | None = None


def saved(text: str, nbytes: int = 100, trimmable: bool = False) -> State:
    return State([FakeLayer(nbytes, trimmable)], [ord(c) for c in text], text)


def test_the_active_state_is_kept_when_the_prompt_extends_it():
    pool: PromptCachePool[State] = PromptCachePool()
    active = saved("abc")
    assert pool.exchange(active, State, text="abcd") is active
    assert len(pool) == 0


def test_conversations_taking_turns_each_get_their_own_cache_back():
    pool: PromptCachePool[State] = PromptCachePool()
    a = saved("conversation A")
    b = pool.exchange(a, State, text="conversation B")  # A is saved, B starts afresh
    assert b.cache is None and len(pool) == 1
    b = saved("conversation B")
    back = pool.exchange(b, State, text="conversation A, next turn")
    assert back is a
    assert len(pool) == 1  # B is saved in its place
    assert pool.exchange(a, State, text="conversation B, next turn") is b
    stats = pool.stats()
    assert (stats.hits, stats.misses, stats.evictions) == (2, 1, 0)


def test_the_longest_saved_prefix_wins():
    pool: PromptCachePool[State] = PromptCachePool()
    short, long = saved("ab"), saved("abcd")
    pool.exchange(short, State, text="x")
    pool.exchange(long, State, text="y")
    assert pool.exchange(State(), State, text="abcdef") is long


def test_an_exact_repeat_is_not_an_extension():
    pool: PromptCachePool[State] = PromptCachePool()
    pool.exchange(saved("abc"), State, text="other")
    assert pool.exchange(State(), State, text="abc").cache is None


def test_least_recently_used_caches_go_first_within_the_count():
    pool: PromptCachePool[State] = PromptCachePool(max_entries=2)
    states = [saved(t) for t in ("a1", "b1", "c1")]
    for state in states:
        pool.exchange(state, State, text="zzz")
    assert len(pool) == 2 and pool.stats().evictions == 1
    assert pool.exchange(State(), State, text="a1 and more").cache is None  # evicted
    assert pool.exchange(State(), State, text="b1 and more") is states[1]


def test_memory_stays_within_the_byte_budget():
    pool: PromptCachePool[State] = PromptCachePool(max_entries=10, max_bytes=250)
    for text in ("p", "q", "r", "s"):
        pool.exchange(saved(text, nbytes=100), State, text="zzz")
        assert pool.nbytes <= 250
    assert len(pool) == 2 and pool.nbytes == 200
    pool.exchange(saved("huge", nbytes=1000), State, text="zzz")  # larger than the budget
    assert pool.nbytes <= 250 and pool.exchange(State(), State, text="huge!").cache is None


def test_a_trimmable_cache_lends_a_copy_for_a_shared_prefix():
    pool: PromptCachePool[State] = PromptCachePool()
    kv = saved("system prompt; user A", trimmable=True)
    pool.exchange(kv, State, text="zzz")
    lent = pool.exchange(State(), State, text="system prompt; user B")
    assert lent is not kv and lent.tokens == kv.tokens  # a copy, to be trimmed
    assert len(pool) == 1 and pool.stats().trimmed == 1
    # A cache that cannot be rewound (LFM2's conv state) lends nothing.
    conv = PromptCachePool[State]()
    conv.exchange(saved("system prompt; user A"), State, text="zzz")
    assert conv.exchange(State(), State, text="system prompt; user B").cache is None


def test_token_prompts_match_the_cached_tokens():
    pool: PromptCachePool[State] = PromptCachePool()
    a = State([FakeLayer()], [1, 2, 3], None)
    pool.exchange(a, State, tokens=[9])
    assert pool.exchange(State(), State, tokens=[1, 2, 3, 4]) is a
    with pytest.raises(ValueError):
        pool.exchange(State(), State)


# ---------------------------------------------------------------- with a model
@pytest.fixture
def pooled_tiny(fresh_tiny):
    pool = PromptCachePool(max_entries=4)
    fresh_tiny.keep_prompt_caches(pool)
    yield fresh_tiny, pool
    fresh_tiny.keep_prompt_caches(None)
    fresh_tiny.reset_cache()


def _turn(model, messages):
    result = model.generate(messages, max_tokens=8, sampling=GREEDY)
    return result, [*messages, {"role": "assistant", "content": result.text}]


def test_a_conversation_resumes_its_cache_after_another_one_ran(pooled_tiny):
    model, pool = pooled_tiny
    first, a = _turn(model, [{"role": "user", "content": "Conversation A, first question"}])
    _, _ = _turn(model, [{"role": "user", "content": "Conversation B, something else"}])
    a.append({"role": "user", "content": "A again"})
    resumed = model.generate(a, max_tokens=8, sampling=GREEDY)
    history = first.stats.prompt_tokens + first.stats.generated_tokens
    assert resumed.stats.cached_prompt_tokens == history - 1
    assert pool.stats().hits == 1
    # The other conversation changed nothing: A's two turns alone give the same output.
    model.reset_cache()
    assert len(pool) == 0
    _turn(model, [{"role": "user", "content": "Conversation A, first question"}])
    alone = model.generate(a, max_tokens=8, sampling=GREEDY)
    assert alone.stats.cached_prompt_tokens == resumed.stats.cached_prompt_tokens
    assert alone.token_ids == resumed.token_ids


def test_without_a_pool_a_switch_loses_the_earlier_conversation(fresh_tiny):
    _, a = _turn(fresh_tiny, [{"role": "user", "content": "Conversation A, first question"}])
    _turn(fresh_tiny, [{"role": "user", "content": "Conversation B, something else"}])
    a.append({"role": "user", "content": "A again"})
    assert fresh_tiny.generate(a, max_tokens=8, sampling=GREEDY).stats.cached_prompt_tokens == 0


def test_a_byte_budget_smaller_than_a_cache_keeps_nothing(fresh_tiny):
    fresh_tiny.keep_prompt_caches(PromptCachePool(max_bytes=1))
    try:
        _, a = _turn(fresh_tiny, [{"role": "user", "content": "Conversation A"}])
        _turn(fresh_tiny, [{"role": "user", "content": "Conversation B"}])
        a.append({"role": "user", "content": "A again"})
        again = fresh_tiny.generate(a, max_tokens=8, sampling=GREEDY)
        assert again.stats.cached_prompt_tokens == 0
    finally:
        fresh_tiny.keep_prompt_caches(None)
