"""Memory bounds on untrusted input, checked as a cap on a child process's data size
(`memory_cap`), not a timing, so they hold on a loaded machine. (The wide-schema and
large-file bounds live beside their cases: test_hostile_schemas, test_rag_streaming.)"""

from __future__ import annotations

from memory_cap import MIB, run_capped


def test_45_mb_on_stdin_is_refused_within_a_memory_cap():
    """Read only up to the text limit, never tokenized: it once aborted at 7.5 GB."""
    result = run_capped(
        setup="""
            import contextlib, io
            from agent.cli.main import main
        """,
        body="""
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                code = main(["generate", "--model", "tiny"])
            result = {"code": code, "stderr": err.getvalue()}
        """,
        allowance=50 * MIB,
        stdin=b"a" * (45 * MIB),
    )
    assert result["code"] == 2
    assert "more than 1 MiB, over the limit of 1 MiB" in result["stderr"]
    assert "Traceback" not in result["stderr"]
