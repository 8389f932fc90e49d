"""`edge-agent sessions list|show ID|delete ID|repair ID`: the saved conversations."""

from __future__ import annotations

import argparse
import json
import sys
import time

from agent.sessions import RUNNING, SessionStore, TurnInfo


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sessions", help="list, show, delete or repair saved conversations")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = actions.add_parser("list", help="every session, most recent first")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    show = actions.add_parser("show", help="the turns of one session")
    show.add_argument("id", help="a session id (or a unique prefix of one)")
    show.add_argument("--json", action="store_true", help="the session as one JSON object")
    delete = actions.add_parser("delete", help="delete a session")
    delete.add_argument("id", help="a session id (or a unique prefix of one)")
    repair = actions.add_parser(
        "repair", help="drop the messages of a session that cannot be read back"
    )
    repair.add_argument("id", help="a session id (or a unique prefix of one)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    store = SessionStore()
    if args.action == "list":
        sessions = store.list()
        for s in sessions:
            if args.json:
                print(json.dumps(s.to_dict(), ensure_ascii=False))
            else:
                print(f"{s.id}  {_when(s.updated)}  {s.turns:>3} turn(s)  {s.model}  {s.title}")
        if not sessions and not args.json:
            print("no sessions yet (edge-agent run saves one per conversation)", file=sys.stderr)
        return 0
    if args.action == "show":
        info = store.info(args.id)
        turns = store.turns(info.id)
        if args.json:
            data = info.to_dict() | {"turns": [_turn_dict(t) for t in turns]}
            print(json.dumps(data, ensure_ascii=False))
            return 0
        print(f"session {info.id} ({info.model}, {len(turns)} turn(s))")
        for t in turns:
            status = "interrupted or running" if t.status == RUNNING else t.status
            extra = f": {t.stopped_by}" if t.stopped_by else ""
            print(f"\n--- turn {t.turn} ({status}{extra})")
            for m in t.messages:
                print(f"[{m.role}] {m.content}")
        return 0
    if args.action == "repair":
        sid, dropped = store.repair(args.id)
        print(f"session {sid}: dropped {dropped} unreadable message(s)", file=sys.stderr)
        return 0
    sid = store.delete(args.id)
    print(f"deleted session {sid}", file=sys.stderr)
    return 0


def _turn_dict(t: TurnInfo) -> dict:
    return {
        "turn": t.turn,
        "status": t.status,
        "stopped_by": t.stopped_by,
        "messages": [m.message.to_dict() | {"meta": m.meta} for m in t.messages],
    }


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))
