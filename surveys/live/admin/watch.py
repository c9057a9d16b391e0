"""What an organiser sees of a live room: the transcript with flags and hidden messages, each
member with their words on the current item and overall (who is silent), and the room's log.
Read with a handful of queries whatever the room's length."""

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q
from django.utils.translation import gettext, ngettext

from surveys.live.models import Message, Room, RoomLog, RoomMember


@dataclass(frozen=True)
class MemberRow:
    id: int
    pseudonym: str
    messages: int
    on_item: int
    removed: bool
    hand_raised: bool
    last_seen: Any

    @property
    def silent(self) -> bool:
        """Has written nothing on the current agenda item (the moderator nudges them too)."""
        return not self.removed and self.on_item == 0


def members(room: Room) -> list[MemberRow]:
    chat = Q(messages__kind=Message.Kind.CHAT)
    rows = (
        RoomMember.objects.filter(room=room)
        .annotate(
            n=Count("messages", filter=chat),
            on_item=Count("messages", filter=chat & Q(messages__item_index=room.item_index)),
        )
        .order_by("pseudonym")
    )
    return [
        MemberRow(
            m.pk,
            m.pseudonym,
            m.n,
            m.on_item,
            m.removed_at is not None,
            m.hand_raised_at is not None,
            m.last_seen_at,
        )
        for m in rows
    ]


def transcript(room: Room) -> list[dict[str, Any]]:
    rows = (
        Message.objects.filter(room=room)
        .annotate(flag_count=Count("flags"))
        .select_related("member", "to_member")
        .order_by("seq")
    )
    return [
        {
            "id": m.pk,
            "seq": m.seq,
            "kind": m.kind,
            "author": m.member.pseudonym if m.member_id else gettext("Moderator"),
            "to": m.to_member.pseudonym if m.to_member_id else "",
            "text": m.text,
            "item": m.item_index + 1,
            "flags": m.flag_count,
            "hidden": m.hidden_at is not None,
            "hidden_by": m.get_hidden_by_display(),
            "at": m.created_at,
            "in_turn": m.in_turn,
        }
        for m in rows
    ]


def describe(detail: Any) -> str:
    """A log row's detail in words ("message 4, 1 flag", "item 2") rather than its stored
    dict; keys this page does not know are shown as they are, so nothing logged is hidden."""
    if not isinstance(detail, dict):
        return str(detail or "")
    reasons = {"deadline": gettext("time was up"), "vote": gettext("the members voted")}
    words = []
    for key, value in detail.items():
        if key == "seq":
            words.append(gettext("message %(seq)s") % {"seq": value})
        elif key == "item" and isinstance(value, int):
            # Stored from 0, shown from 1 as on the rest of the page.
            words.append(gettext("item %(number)s") % {"number": value + 1})
        elif key == "flags" and isinstance(value, int):
            words.append(ngettext("%(n)s flag", "%(n)s flags", value) % {"n": value})
        elif key == "present" and isinstance(value, int):
            words.append(ngettext("%(n)s present", "%(n)s present", value) % {"n": value})
        elif key == "seconds" and isinstance(value, int):
            words.append(ngettext("%(n)s second", "%(n)s seconds", value) % {"n": value})
        elif key == "reason":
            words.append(reasons.get(value, str(value)))
        else:
            words.append(f"{key}: {value}")
    return ", ".join(words)


def log(room: Room, limit: int = 200) -> list[RoomLog]:
    entries = list(
        RoomLog.objects.filter(room=room).select_related("actor", "member").order_by("-pk")[:limit]
    )
    for entry in entries:
        entry.detail_text = describe(entry.detail)  # type: ignore[attr-defined]
    return entries
