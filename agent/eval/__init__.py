"""Benchmarks of edge-agent against public data sets.

`bfcl_data` finds and loads the Berkeley Function Calling Leaderboard (BFCL) cases,
`bfcl_checker` holds BFCL's AST rules, `bfcl_results` reads and writes the results
files a runner produces, and `bfcl_score` scores such a file. Nothing here imports MLX:
scoring must stay cheap enough for a CLI `--help` and for CI without a model.
"""

from __future__ import annotations

from agent.eval.bfcl_checker import Verdict, score_case
from agent.eval.bfcl_data import (
    CATEGORIES,
    BfclCase,
    BfclDataError,
    Message,
    PossibleCall,
    find_data_dir,
    load_cases,
)
from agent.eval.bfcl_results import ResultRecord, read_results
from agent.eval.bfcl_score import CaseScore, ScoreReport, score_file, score_records

__all__ = [
    "CATEGORIES",
    "BfclCase",
    "BfclDataError",
    "CaseScore",
    "Message",
    "PossibleCall",
    "ResultRecord",
    "ScoreReport",
    "Verdict",
    "find_data_dir",
    "load_cases",
    "read_results",
    "score_case",
    "score_file",
    "score_records",
]
