"""How runs end when something goes wrong outside the happy path: a consumer that walks
away from the event stream, and a final answer that never matches `response_format`.
(The loop's catch-all, an engine raising mid-run, is in test_logging.py.)"""

from __future__ import annotations

import asyncio

from agent import Agent
from agent.agent import RETRY_ANSWER
from agent.engines.scripted import Reply, ScriptedModel
from agent.events import ErrorEvent, TextDelta
from agent.messages import UserMessage
from agent.progress import GenerationProgress, observe_generations
from agent.sampling import SamplingParams
from agent.sessions import SessionStore

VERDICT = {
    "type": "object",
    "properties": {"answer": {"enum": ["yes", "no"]}},
    "required": ["answer"],
    "additionalProperties": False,
}


def test_a_consumer_that_leaves_mid_run_frees_the_model_and_closes_the_turn(tiny, tmp_path):
    store = SessionStore(tmp_path / "sessions.sqlite3")
    session = store.create()
    budget = 2000
    agent = Agent(
        tiny,
        tool_choice="none",
        max_tokens=budget,
        session=session,
        sampling=SamplingParams(temperature=1.0, seed=0),
    )
    reports: list[GenerationProgress] = []

    async def leave_after_the_first_text() -> list[GenerationProgress]:
        observe_generations(reports.append)
        events = agent.stream("Tell me a long story")
        async for event in events:
            if isinstance(event, TextDelta):
                break
        await events.aclose()
        # Closing the stream waited for the generation to stop: it has reported its end.
        return [r for r in reports if r.phase == "done"]

    done = asyncio.run(leave_after_the_first_text())
    assert len(done) == 1 and done[0].generated < budget // 10
    # The turn is recorded as cancelled, not left running...
    (turn,) = session.turns()
    assert (turn.status, turn.stopped_by) == ("stopped", "cancelled")
    # ...and the agent runs again on the freed model.
    again = agent.run("Once more")
    assert again.final.session_id == session.id
    assert again.stopped_by in (None, "token_budget")
    first, second = session.turns()
    assert first.stopped_by == "cancelled"
    assert (second.status, second.stopped_by) == (
        ("done", None) if again.stopped_by is None else ("stopped", again.stopped_by)
    )


def test_an_answer_that_never_matches_response_format_ends_in_an_error_after_a_retry():
    bad = [Reply(answer={"answer": "maybe"}), Reply(text="yes, probably")]
    model = ScriptedModel(bad)
    result = Agent(model, response_format=VERDICT, max_steps=2).run("Is Oslo in Norway?")
    assert result.stopped_by == "error" and result.output is None
    assert "does not match response_format" in (result.final.reason or "")
    assert result.of_type(ErrorEvent) == []  # a stop with a reason, not a crash
    # The second step was told what was wrong with the first answer.
    assert len(model.requests) == 2
    retry = model.requests[1].messages[-1]
    assert isinstance(retry, UserMessage)
    assert retry.content.startswith(RETRY_ANSWER.split("{problem}")[0])
    assert "'maybe'" in retry.content


def test_a_retried_answer_that_matches_is_the_output():
    model = ScriptedModel([Reply(text="not JSON at all"), Reply(answer={"answer": "yes"})])
    result = Agent(model, response_format=VERDICT, max_steps=3).run("Is Oslo in Norway?")
    assert result.stopped_by is None
    assert result.output == {"answer": "yes"}
    assert len(model.requests) == 2
