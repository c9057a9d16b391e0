"""Transcripts of live rooms, pseudonymous, for researchers with microdata access.

One row per stored message of a room, in its order (seq): who wrote it by the room's pseudonym
("moderator" for the automated moderator), never a participant id, name or contact. A hidden
message keeps its row (when, who, in reply to what, and who hid it) but not its text: an
organiser hides a message for what it says (an insult, a phone number), so the export does not
carry it further. The measures of deliberation count hidden messages (see
results.compute.deliberation). The API serves a room's transcript as JSON or CSV and the data
package has both files per room.
"""

import json
from collections.abc import Iterator
from typing import Any

from django.db.models import Count

from results.exports.writers import table_csv
from surveys.live.models import Message, Room
from surveys.models import Option, Poll

MODERATOR = "moderator"
TRANSCRIPT_COLUMNS: dict[str, str] = {
    "room": "The room's small-group number.",
    "seq": "The message's place in the room (1, 2, ... without gaps).",
    "created_at": "When the server stored it (UTC, ISO 8601).",
    "item_index": "The agenda item the room was on (0-based).",
    "option": "That item's option key (empty after the last one: the panel questions).",
    "kind": "chat, prompt (moderator), nudge, system or question.",
    "author": f"The member's pseudonym, or '{MODERATOR}'.",
    "to": "A nudge's addressee (pseudonym); empty: the whole room.",
    "reply_to_seq": "seq of the message this one replies to; empty if none.",
    "in_turn": "true when written by the member holding the speaking turn.",
    "hidden_by": "flags or organiser when the message was hidden; empty if shown.",
    "text": "The message; empty when hidden.",
}


def rooms_of(poll: Poll) -> list[dict[str, Any]]:
    """The poll's rooms with the size of their transcripts, by group number."""
    rooms = (
        Room.objects.filter(poll=poll)
        .annotate(
            n_members=Count("members", distinct=True),
            n_messages=Count("messages", distinct=True),
        )
        .order_by("group")
        .values("group", "language", "state", "opened_at", "closed_at", "n_members", "n_messages")
    )
    return list(rooms)


def transcript_rows(poll: Poll, *, group: int | None = None) -> Iterator[dict[str, Any]]:
    """The messages of one room (``group``) or every room of the poll, in order."""
    options = list(Option.objects.filter(poll=poll).order_by("order", "id").values_list("key"))
    messages = Message.objects.filter(room__poll=poll)
    if group is not None:
        messages = messages.filter(room__group=group)
    rows = (
        messages.order_by("room__group", "seq")
        .values_list(
            "room__group",
            "seq",
            "created_at",
            "item_index",
            "kind",
            "member__pseudonym",
            "to_member__pseudonym",
            "reply_to__seq",
            "in_turn",
            "hidden_by",
            "hidden_at",
            "text",
        )
        .iterator(chunk_size=2000)
    )
    for room, seq, at, item, kind, author, to, reply, in_turn, hidden_by, hidden_at, text in rows:
        hidden = hidden_at is not None
        yield {
            "room": room,
            "seq": seq,
            "created_at": at.isoformat(),
            "item_index": item,
            "option": options[item][0] if item < len(options) else "",
            "kind": kind,
            "author": author or MODERATOR,
            "to": to or "",
            "reply_to_seq": reply,
            "in_turn": in_turn,
            "hidden_by": (hidden_by or "hidden") if hidden else "",
            "text": "" if hidden else text,
        }


def transcript_files(poll: Poll) -> Iterator[tuple[str, bytes]]:
    """(path, content) of each room's transcript in the data package, CSV and JSON."""
    rooms = list(Room.objects.filter(poll=poll).order_by("group").values_list("group", flat=True))
    for group in rooms:
        rows = list(transcript_rows(poll, group=group))
        yield f"transcripts/room_{group}.csv", table_csv(rows, list(TRANSCRIPT_COLUMNS))
        yield (
            f"transcripts/room_{group}.json",
            json.dumps(
                {"room": group, "columns": TRANSCRIPT_COLUMNS, "messages": rows},
                indent=1,
                ensure_ascii=False,
            ).encode(),
        )


def package_resources(poll: Poll) -> list[dict[str, Any]]:
    """The data package's description of each room's transcript CSV."""
    groups = Room.objects.filter(poll=poll).order_by("group").values_list("group", flat=True)
    schema = {
        "fields": [{"name": k, "description": text} for k, text in TRANSCRIPT_COLUMNS.items()],
        "missingValues": [""],
    }
    return [
        {
            "name": f"transcript-room-{group}",
            "path": f"transcripts/room_{group}.csv",
            "format": "csv",
            "mediatype": "text/csv",
            "encoding": "utf-8",
            "schema": schema,
        }
        for group in groups
    ]
