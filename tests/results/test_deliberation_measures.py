"""The measures of deliberation computed by a real recompute from a stored transcript, each
checked against the arithmetic written out here, and the disclosure of rooms and subgroups."""

import math
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from results.compute.recompute import recompute_poll
from surveys.live.models import Message, Room, RoomMember, SessionSlot
from surveys.models import Answer, Participant, Poll, Question, Reason
from tests.factories import make_poll, texts

ARGUMENTS_FOR = "- Soldiers come home to their families\n- Money saved for schools"
ARGUMENTS_AGAINST = "- Withdrawal abandons our allies to danger"
# pseudonym: (T1 rating of exit, T2 rating, leaning)
MEMBERS = {
    "Ana": (2, 4, "left"),  # oppose (below the midpoint 5)
    "Bo": (8, 6, "left"),  # support
    "Cy": (7, 5, "right"),  # support
    "Di": (5, 5, "right"),  # neutral: no side
}


def live_poll() -> Poll:
    poll = make_poll(slug="live-measures")
    exit_option = poll.options.get(key="exit")
    exit_option.arguments_for = {"en": ARGUMENTS_FOR}
    exit_option.arguments_against = {"en": ARGUMENTS_AGAINST}
    exit_option.save()
    return poll


def seat(poll: Poll, room: Room, pseudonym: str, answers: tuple[int, int, str] | None) -> Any:
    now = timezone.now()
    person = Participant.objects.create(
        poll=poll,
        arm="treatment",
        group=room.group,
        consented_at=now - timedelta(hours=1),
        completed_at=now,
        label=f"label of {pseudonym}",
        contact=f"{pseudonym}@example.org",
    )
    if answers is not None:
        t1, t2, leaning = answers
        rate = poll.questions.get(key="rate_exit")
        lean = poll.questions.get(key="leaning")
        for wave, value in ((1, t1), (2, t2)):
            Answer.objects.create(
                poll=poll, participant=person, question=rate, wave=wave, value=value, number=value
            )
        code = lean.choice_keys().index(leaning) + 1
        Answer.objects.create(
            poll=poll, participant=person, question=lean, wave=1, value=leaning, number=code
        )
    return RoomMember.objects.create(room=room, participant=person, pseudonym=pseudonym)


@pytest.fixture
def transcript(db: None) -> dict[str, Any]:
    poll = live_poll()
    slot = SessionSlot.objects.create(poll=poll, starts_at=timezone.now(), capacity=10)
    room = Room.objects.create(poll=poll, slot=slot, language="en", group=1)
    members = {name: seat(poll, room, name, answers) for name, answers in MEMBERS.items()}
    # A room of one, under the minimum subgroup size of 2: no rows of its own.
    lone_room = Room.objects.create(poll=poll, slot=slot, language="en", group=2)
    lone = seat(poll, lone_room, "Eve", (9, 9, "left"))
    seq = iter(range(1, 100))

    def say(who: str | None, text: str, **extra: Any) -> Message:
        member = members[who] if who else None
        return Message.objects.create(
            room=room,
            member=member,
            seq=next(seq),
            text=text,
            kind=extra.pop("kind", Message.Kind.CHAT if who else Message.Kind.PROMPT),
            client_id=f"c{room.last_seq}-{text[:8]}" if who else "",
            **extra,
        )

    say(None, "Let us talk about the exit option.")
    first = say("Ana", "Withdrawal abandons the allies we promised to protect")
    second = say("Bo", "But soldiers come home to their families", reply_to=first)
    say("Cy", "I agree with that", reply_to=second)
    say("Di", "Hmm maybe", reply_to=first)
    say("Ana", "You are all idiots", hidden_at=timezone.now(), hidden_by="flags")
    say(None, "Di, what do you think?", kind=Message.Kind.NUDGE, to_member=members["Di"])
    say("Bo", "ok", item_index=1)
    Message.objects.create(room=lone_room, member=lone, seq=1, text="Alone here", client_id="x")
    # Cy wrote in the reasons form against exit: a reason for the other side.
    Reason.objects.create(
        poll=poll,
        participant=members["Cy"].participant,
        option=poll.options.get(key="exit"),
        stance=Reason.Stance.AGAINST,
        text="Too risky",
    )
    payload = recompute_poll(poll.pk).payload
    return {"poll": poll, "payload": payload}


def rows(payload: dict[str, Any], **match: Any) -> list[dict[str, Any]]:
    table = payload["deliberation_rooms"]
    return [r for r in table if all(r[k] == v for k, v in match.items())]


def one(payload: dict[str, Any], **match: Any) -> dict[str, Any]:
    found = rows(payload, **match)
    assert len(found) == 1, found
    return found[0]


@pytest.mark.django_db
def test_whole_session_of_the_room_by_hand(transcript):
    row = one(transcript["payload"], room=1, item="", subgroup="")
    # Members' messages: Ana 2 (8 + 4 words), Bo 2 (7 + 1), Cy 1 (4), Di 1 (2); the prompt and
    # the nudge are the moderator's. 6 messages, 26 words, everyone spoke.
    assert (row["n_members"], row["n_speakers"], row["n_messages"], row["n_words"]) == (4, 4, 6, 26)
    assert row["share_spoke"] == 1.0
    assert row["n_hidden"] == 1
    # Gini of words [12, 8, 4, 2]: sorted 2, 4, 8, 12, sum 26; sum k x_(k) = 2 + 8 + 24 + 48 = 82;
    # 2 * 82 / (4 * 26) - 5/4 = 0.326923...; pairwise: (4+8+10+4+6+2) * 2 / (2 * 16 * 6.5).
    assert row["gini_words"] == pytest.approx(2 * 82 / (4 * 26) - 5 / 4)
    assert row["gini_words"] == pytest.approx(68 / 208)
    # Replies: Bo -> Ana, Cy -> Bo, Di -> Ana: 3 of 6. Both sided: Bo (support) -> Ana (oppose),
    # cross-cutting; Cy (support) -> Bo (support), not; Di is neutral, so his reply is not sided.
    assert (row["n_replies"], row["reply_share"]) == (3, 0.5)
    assert (row["n_replies_sided"], row["cross_cutting_share"]) == (2, 0.5)
    # Ana's first message shares withdrawal, abandons, allies with the argument against: her
    # own side (oppose). Bo's shares soldiers, come, home, their, families with an argument for:
    # his own side. Cy's "I agree with that" shares nothing.
    assert (row["n_reasons_own"], row["n_reasons_other"]) == (2, 0)
    # Cy (support) wrote against exit in the reasons form.
    assert (row["n_written_reasons_own"], row["n_written_reasons_other"]) == (0, 1)
    assert row["sd_t1"] is None and row["word_share"] is None  # per option / subgroup only


@pytest.mark.django_db
def test_the_exit_item_with_its_spread_by_hand(transcript):
    row = one(transcript["payload"], room=1, item="rate_exit", subgroup="")
    # Bo's "ok" was on the next item: 5 messages, 25 words.
    assert (row["n_messages"], row["n_words"], row["n_replies"]) == (5, 25, 3)
    assert row["reply_share"] == pytest.approx(3 / 5)
    # T1 2, 8, 7, 5: mean 5.5, squares 12.25 + 6.25 + 2.25 + 0.25 = 21, var 21/3 = 7.
    # T2 4, 6, 5, 5: mean 5, squares 1 + 1 + 0 + 0 = 2, var 2/3.
    assert row["n_pairs"] == 4
    assert row["sd_t1"] == pytest.approx(math.sqrt(7))
    assert row["sd_t2"] == pytest.approx(math.sqrt(2 / 3))
    assert row["sd_change"] == pytest.approx(math.sqrt(2 / 3) - math.sqrt(7))


@pytest.mark.django_db
def test_subgroup_shares_and_what_is_withheld(transcript):
    payload = transcript["payload"]
    # Leaning: left = Ana and Bo, 20 of 26 words, 2 of 4 members; right = Cy and Di, 6 words.
    left = one(payload, room=1, item="", subgroup="leaning", subgroup_value="left")
    right = one(payload, room=1, item="", subgroup="leaning", subgroup_value="right")
    assert (left["word_share"], left["member_share"]) == pytest.approx((20 / 26, 0.5))
    assert left["participation_ratio"] == pytest.approx((20 / 26) / 0.5)
    assert right["participation_ratio"] == pytest.approx((6 / 26) / 0.5)
    assert (left["n_members"], left["n_words"], left["n_messages"]) == (2, 20, 4)
    # The T1 sides on exit are oppose 1 (Ana), neutral 1 (Di), support 2: cells of one under
    # the minimum size 2, so the split is withheld (in the room and pooled).
    assert rows(payload, subgroup="t1_side") == []
    # The room of one has no rows; the pooled rows pool the shown room only.
    assert rows(payload, room=2) == []
    assert payload["meta"]["deliberation"]["rooms_withheld"] == [2]
    pooled = one(payload, room=None, item="", subgroup="")
    whole = one(payload, room=1, item="", subgroup="")
    assert pooled == {**whole, "room": None}


@pytest.mark.django_db
def test_member_rows_carry_pseudonyms_and_their_counts(transcript):
    members = transcript["payload"]["deliberation_members"]
    poll = transcript["poll"]
    public_ids = set(Participant.objects.filter(poll=poll).values_list("public_id", flat=True))
    text = repr(members)
    assert not any(public_id in text for public_id in public_ids)
    assert "example.org" not in text and "label of" not in text
    by_name = {(r["room"], r["pseudonym"], r["item"]): r for r in members}
    ana = by_name[(1, "Ana", "")]
    assert (ana["n_messages"], ana["n_words"], ana["n_hidden"]) == (2, 12, 1)
    assert ana["word_share"] == pytest.approx(12 / 26)
    assert ana["n_reasons_own"] == 1 and ana["t1_side"] is None
    bo = by_name[(1, "Bo", "rate_exit")]
    assert (bo["t1_side"], bo["n_replies"], bo["n_cross_cutting"], bo["n_words"]) == (1, 1, 1, 7)
    assert by_name[(1, "Di", "rate_exit")]["t1_side"] == 0
    assert by_name[(1, "Cy", "rate_exit")]["n_written_reasons_other"] == 1
    # Members of a withheld room are still microdata rows.
    assert by_name[(2, "Eve", "")]["n_words"] == 2


@pytest.mark.django_db
def test_a_new_message_changes_the_snapshot(transcript):
    poll = transcript["poll"]
    before = recompute_poll(poll.pk)
    room = Room.objects.get(poll=poll, group=1)
    member = room.members.get(pseudonym="Di")
    Message.objects.create(room=room, member=member, seq=50, text="One more", client_id="late")
    after = recompute_poll(poll.pk)
    assert after.pk != before.pk
    assert one(after.payload, room=1, item="", subgroup="")["n_words"] == 28


@pytest.mark.django_db
def test_a_poll_without_rooms_has_empty_tables():
    poll = make_poll(slug="no-rooms")
    payload = recompute_poll(poll.pk).payload
    assert payload["deliberation_rooms"] == [] and payload["deliberation_members"] == []
    assert payload["meta"]["deliberation"] == {"n_rooms": 0}
    assert Question.objects.filter(poll=poll, key="rate_exit").exists()
    assert texts("x")["en"] == "x"
