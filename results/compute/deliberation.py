"""Measures of live deliberation from the stored transcripts, and the transcripts themselves.

``load_deliberation`` reads a poll's room members (one query) and streams its members'
messages (one query, in chunks: each message is reduced to a few integers on the way, so memory
grows with the number of messages, not with their text); the reasons of the asynchronous form
(the mode "both") are a third, small query. ``deliberation_tables`` turns them into the rows of
``deliberation_rooms`` and ``deliberation_members`` (columns in results/tables.py) with the
formulas of results.stats.deliberation.

Which messages count: every message a member wrote (chat, and questions for the panel written
in the room), hidden ones included: a hidden message was written and read by the group until it
was hidden, so it is part of how the group deliberated; ``n_hidden`` says how many there were.
The moderator's prompts, nudges and notices are not members' messages. Members removed by an
organiser keep their rows (removed = 1). The transcript export shows a hidden message's row
(who, when, in reply to what) without its text: an organiser hides a message for what it says.

Sides and subgroups come from the results population (participants who completed the poll):
a member who did not complete has messages but no side and no breakdown answer.

Disclosure (the poll's minimum subgroup size k; a room is a group): a room with fewer than k
members has no rows, and the pooled rows (room empty) pool the shown rooms only, so the total
minus the shown rooms is nothing. A subgroup split (a breakdown question, or the T1 sides on an
option) is shown in a set of members only when each of its cells, those without an answer
included, holds 0 or at least k members; pooled, also the members of the shown rooms where the
split was withheld must form such cells. A room's spread of opinion on an option is shown only
over at least k complete pairs. Per-member rows are microdata (the API serves them to
microdata grants only) and carry the room's pseudonym, never the participant's id.
"""

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from results import tables
from results.compute.breakdowns import breakdown_codes, breakdown_questions, breakdown_values
from results.compute.loading import PollData, json_row
from results.stats import deliberation as measures
from surveys.live.models import Message, RoomMember
from surveys.models import Option, Question, Reason

MEMBER_KINDS = (Message.Kind.CHAT, Message.Kind.QUESTION)
SIDE_NAMES = {-1: "oppose", 0: "neutral", 1: "support"}
SIDE_SUBGROUP = "t1_side"
NO_OPTION = -1


@dataclass
class Agenda:
    """The options in agenda order (Room.item_index), with what the measures need of each."""

    keys: list[str]
    items: list[str]  # the option's paired rating question key ("" if it has none)
    question_index: list[int]  # that question's index in PollData.questions (-1 if none)
    scales: list[tuple[float, float]]
    arguments: dict[str, list[tuple[list[frozenset[str]], list[frozenset[str]]]]]


@dataclass
class Room:
    group: int
    language: str
    member_ids: list[int] = field(default_factory=list)
    pseudonyms: list[str] = field(default_factory=list)
    participants: list[int] = field(default_factory=list)
    removed: list[bool] = field(default_factory=list)
    # Per message (members' messages only), in seq order.
    author: list[int] = field(default_factory=list)
    words: list[int] = field(default_factory=list)
    target: list[int] = field(default_factory=list)  # member index replied to, -1 none
    option: list[int] = field(default_factory=list)
    stance: list[int] = field(default_factory=list)
    hidden: list[bool] = field(default_factory=list)


@dataclass
class Loaded:
    agenda: Agenda
    rooms: list[Room]
    written: dict[tuple[int, int], int]  # (participant id, option index) -> stance +1/-1
    digest: str


def load_agenda(data: PollData) -> Agenda:
    options = list(
        Option.objects.filter(poll_id=data.poll_id)
        .order_by("order", "id")
        .values_list("key", "arguments_for", "arguments_against")
    )
    rating = {
        q.option: i
        for i, q in reversed(list(enumerate(data.questions)))
        if q.kind == Question.Kind.RATING and q.option and q.paired
    }
    agenda = Agenda([], [], [], [], {})
    for key, arguments_for, arguments_against in options:
        index = rating.get(key, -1)
        question = data.questions[index] if index >= 0 else None
        agenda.keys.append(key)
        agenda.items.append(question.key if question else "")
        agenda.question_index.append(index)
        low = question.scale_min if question and question.scale_min is not None else 0
        high = question.scale_max if question and question.scale_max is not None else 10
        agenda.scales.append((float(low), float(high)))
        for language in {*(arguments_for or {}), *(arguments_against or {})}:
            agenda.arguments.setdefault(language, []).append(
                (
                    measures.argument_words((arguments_for or {}).get(language, "")),
                    measures.argument_words((arguments_against or {}).get(language, "")),
                )
            )
    for language, per_option in agenda.arguments.items():
        # A language missing from one option's texts still lines up by option index.
        if len(per_option) != len(options):
            agenda.arguments[language] = [
                (
                    measures.argument_words((o[1] or {}).get(language, "")),
                    measures.argument_words((o[2] or {}).get(language, "")),
                )
                for o in options
            ]
    return agenda


def load_deliberation(data: PollData, *, chunk_size: int = 5000) -> Loaded:
    """Read a poll's live rooms, members and members' messages (call inside the recompute's
    transaction, so they are one picture with the answers)."""
    agenda = load_agenda(data)
    digest = hashlib.sha256()
    rooms: dict[int, Room] = {}
    seat: dict[int, tuple[Room, int]] = {}
    members = (
        RoomMember.objects.filter(room__poll_id=data.poll_id)
        .order_by("room__group", "id")
        .values_list(
            "id", "room_id", "room__group", "room__language", "participant_id", "removed_at"
        )
    )
    pseudonyms = dict(
        RoomMember.objects.filter(room__poll_id=data.poll_id).values_list("id", "pseudonym")
    )
    for member_id, room_id, group, language, participant_id, removed_at in members:
        room = rooms.setdefault(room_id, Room(group=group, language=language))
        seat[member_id] = (room, len(room.member_ids))
        room.member_ids.append(member_id)
        room.pseudonyms.append(pseudonyms[member_id])
        room.participants.append(participant_id)
        room.removed.append(removed_at is not None)
        digest.update(f"m{member_id},{room_id},{group},{participant_id},{removed_at}".encode())
    messages = (
        Message.objects.filter(
            room__poll_id=data.poll_id, member__isnull=False, kind__in=MEMBER_KINDS
        )
        .order_by("room_id", "seq")
        .values_list("member_id", "item_index", "kind", "text", "reply_to__member_id", "hidden_at")
        .iterator(chunk_size=chunk_size)
    )
    n_options = len(agenda.keys)
    for member_id, item_index, kind, text, target_id, hidden_at in messages:
        room, author = seat[member_id]
        option = item_index if kind == Message.Kind.CHAT and item_index < n_options else NO_OPTION
        target_room, target = seat.get(target_id, (None, -1)) if target_id else (None, -1)
        if target_room is not room or target == author:
            target = -1  # a reply to oneself (or, never expected, across rooms) is no reply
        arguments = agenda.arguments.get(room.language) or agenda.arguments.get("en")
        stance = 0
        if option != NO_OPTION and arguments:
            stance = measures.reason_stance(text, *arguments[option])
        room.author.append(author)
        room.words.append(measures.word_count(text))
        room.target.append(target)
        room.option.append(option)
        room.stance.append(stance)
        room.hidden.append(hidden_at is not None)
        digest.update(f"t{member_id},{item_index},{kind},{target_id},{hidden_at}\0".encode())
        digest.update(text.encode())
    participant_ids = [p for room in rooms.values() for p in room.participants]
    option_index = {key: i for i, key in enumerate(agenda.keys)}
    written: dict[tuple[int, int], int] = {}
    for participant_id, option_key, stance in (
        Reason.objects.filter(poll_id=data.poll_id, participant_id__in=participant_ids)
        .order_by("id")
        .values_list("participant_id", "option__key", "stance")
    ):
        written[(participant_id, option_index[option_key])] = (
            1 if stance == Reason.Stance.FOR else -1
        )
        digest.update(f"r{participant_id},{option_key},{stance}".encode())
    ordered = sorted(rooms.values(), key=lambda r: r.group)
    return Loaded(agenda, ordered, written, digest.hexdigest() if rooms else "")


# (subgroup name, its values, per member 0 = no answer else the 1-based value)
Split = tuple[str, list[str], np.ndarray]
COUNTS = (
    "messages",
    "words",
    "replies",
    "replies_sided",
    "cross_cutting",
    "reasons_own",
    "reasons_other",
)
Spread = tuple[int, float, float, float]


def split_shown(codes: np.ndarray, n_values: int, k: int) -> bool:
    """A split of these members into cells (codes 0..n_values, 0 = no answer) may be shown:
    each cell is empty or holds at least k of them."""
    counts = np.bincount(codes, minlength=n_values + 1)
    return bool(((counts == 0) | (counts >= k)).all())


def sums(arrays: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, int]:
    return {
        "n_hidden": int(arrays["hidden"][mask].sum()),
        "n_written_reasons_own": int(arrays["written_own"][mask].sum()),
        "n_written_reasons_other": int(arrays["written_other"][mask].sum()),
    }


def scope_rows(
    room: int | None,
    item: str,
    arrays: dict[str, np.ndarray],
    splits: list[Split],
    spread: dict[str, Any],
) -> Iterator[dict[str, Any]]:
    """The whole row of a room (or the pooled rooms) on one scope, then its shown splits."""
    counts = measures.MemberCounts(**{name: arrays[name] for name in COUNTS})
    everyone = np.ones(counts.messages.size, dtype=bool)
    label = {"room": room, "item": item, "subgroup": "", "subgroup_value": ""}
    whole = vars(measures.group_measures(counts))
    yield json_row({**label, **whole, **sums(arrays, everyone), **spread}, ROOM_COLUMNS)
    for name, values, codes in splits:
        for code, value in enumerate(values, 1):
            mask = codes == code
            if not mask.any():
                continue
            word_share, member_share, ratio = measures.participation_ratio(counts.words, mask)
            part = {
                **label,
                "subgroup": name,
                "subgroup_value": value,
                **vars(measures.group_measures(counts, mask)),
                **sums(arrays, mask),
                "word_share": word_share,
                "member_share": member_share,
                "participation_ratio": ratio,
            }
            yield json_row(part, ROOM_COLUMNS)


class Builder:
    """The rows of both tables for one poll; see the module doc for what is shown."""

    def __init__(self, data: PollData, loaded: Loaded) -> None:
        self.data, self.loaded, self.k = data, loaded, data.min_subgroup_size
        self.agenda = loaded.agenda
        self.breakdowns = []
        for question in breakdown_questions(data):
            codes = np.nan_to_num(breakdown_codes(data, question), nan=0).astype(np.int64)
            keys = breakdown_values(question)  # choice keys, or a number's bins ("18-29")
            codes[(codes < 0) | (codes > len(keys))] = 0
            self.breakdowns.append((question.key, keys, codes))
        self.scopes = [("", NO_OPTION)] + [(i, j) for j, i in enumerate(self.agenda.items) if i]
        self.room_rows: list[dict[str, Any]] = []
        self.member_rows: list[dict[str, Any]] = []
        self.rooms_withheld: list[int] = []
        # Per scope, the shown rooms' arrays and splits (pooled at the end), the codes of the
        # splits withheld in a shown room, and the rooms' spreads.
        self.pooled: dict[str, list[tuple[dict[str, np.ndarray], list[Split]]]] = {}
        self.withheld: dict[tuple[str, str], list[np.ndarray]] = {}
        self.spreads: dict[str, list[Spread]] = {}

    def build(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
        for room in self.loaded.rooms:
            shown = len(room.member_ids) >= self.k
            if not shown:
                self.rooms_withheld.append(room.group)
            self.room(room, shown=shown)
        for item, _ in self.scopes:
            self.pool(item)
        meta = {
            "n_rooms": len(self.loaded.rooms),
            "n_members": sum(len(r.member_ids) for r in self.loaded.rooms),
            "rooms_withheld": self.rooms_withheld,
            "agenda": self.agenda.keys,
        }
        return self.room_rows, self.member_rows, meta

    def positions(self, room: Room) -> np.ndarray:
        """Each member's index in PollData (-1 outside the results population)."""
        ids = np.asarray(room.participants, dtype=np.int64)
        if self.data.n == 0:
            return np.full(ids.size, -1)
        where = np.minimum(np.searchsorted(self.data.participant_ids, ids), self.data.n - 1)
        return np.where(self.data.participant_ids[where] == ids, where, -1)

    def t1(self, positions: np.ndarray, j: int, wave: int = 0) -> np.ndarray:
        """Members' ratings of option j at a wave (NaN: none, or outside the population)."""
        q = self.agenda.question_index[j]
        out = np.full(positions.size, np.nan)
        if q >= 0:
            inside = positions >= 0
            out[inside] = self.data.values[q, wave, positions[inside]]
        return out

    def room(self, room: Room, *, shown: bool) -> None:
        m = len(room.member_ids)
        positions = self.positions(room)
        ratings = [self.t1(positions, j) for j in range(len(self.agenda.keys))]
        sides = np.zeros((len(ratings), m), dtype=np.int8)
        for j, t1 in enumerate(ratings):
            low, high = self.agenda.scales[j]
            sides[j] = np.where(np.isfinite(t1), np.sign(t1 - (low + high) / 2), 0)
        author = np.asarray(room.author, dtype=np.int64)
        target = np.asarray(room.target, dtype=np.int64)
        option = np.asarray(room.option, dtype=np.int64)
        on_option = option != NO_OPTION
        author_side = np.zeros(author.size, dtype=np.int8)
        target_side = np.zeros(author.size, dtype=np.int8)
        author_side[on_option] = sides[option[on_option], author[on_option]]
        replied = on_option & (target >= 0)
        target_side[replied] = sides[option[replied], target[replied]]
        transcript = measures.Transcript(
            author=author,
            words=np.asarray(room.words, dtype=np.int64),
            reply=target >= 0,
            author_side=author_side,
            target_side=target_side,
            stance=np.asarray(room.stance, dtype=np.int8),
        )
        hidden = np.asarray(room.hidden, dtype=bool)
        inside = positions >= 0
        for item, j in self.scopes:
            mask = np.ones(author.size, bool) if j == NO_OPTION else option == j
            counts = transcript.where(mask).member_counts(m)
            arrays = {name: getattr(counts, name) for name in COUNTS}
            arrays["hidden"] = np.bincount(author[mask & hidden], minlength=m)
            arrays["written_own"], arrays["written_other"] = self.written(room, sides, j)
            side = None
            if j != NO_OPTION:
                side = np.where(np.isfinite(ratings[j]), sides[j], np.nan)
            self.members(room, item, side, arrays)
            if j == NO_OPTION:
                splits = [
                    (key, keys, np.where(inside, codes[np.maximum(positions, 0)], 0))
                    for key, keys, codes in self.breakdowns
                ]
                spread: Spread | None = None
            else:
                answered = np.isfinite(ratings[j])
                codes = np.where(answered, sides[j].astype(np.int64) + 2, 0)
                splits = [(SIDE_SUBGROUP, list(SIDE_NAMES.values()), codes)]
                spread = measures.spread(ratings[j], self.t1(positions, j, wave=1))
            if not shown:
                continue
            visible = [s for s in splits if split_shown(s[2], len(s[1]), self.k)]
            for name, _, codes in splits:
                if not any(name == s[0] for s in visible):
                    self.withheld.setdefault((item, name), []).append(codes)
            self.pooled.setdefault(item, []).append((arrays, splits))
            if spread is not None:
                self.spreads.setdefault(item, []).append(spread)
            columns = self.spread_columns([spread] if spread is not None else [])
            self.room_rows.extend(scope_rows(room.group, item, arrays, visible, columns))

    def spread_columns(self, spreads: list[Spread]) -> dict[str, Any]:
        """A room's spread when over at least k pairs; pooled, the mean over such rooms."""
        shown = [s for s in spreads if s[0] >= self.k]
        if not shown:
            return {}
        return {
            "n_pairs": sum(s[0] for s in shown),
            "sd_t1": float(np.mean([s[1] for s in shown])),
            "sd_t2": float(np.mean([s[2] for s in shown])),
            "sd_change": float(np.mean([s[3] for s in shown])),
        }

    def pool(self, item: str) -> None:
        parts = self.pooled.get(item)
        if not parts:
            return
        arrays = {name: np.concatenate([p[0][name] for p in parts]) for name in parts[0][0]}
        splits = []
        for index, (name, values, _) in enumerate(parts[0][1]):
            codes = np.concatenate([p[1][index][2] for p in parts])
            residual = self.withheld.get((item, name), [])
            left = np.concatenate(residual) if residual else np.zeros(0, dtype=np.int64)
            if split_shown(codes, len(values), self.k) and split_shown(left, len(values), self.k):
                splits.append((name, values, codes))
        columns = self.spread_columns(self.spreads.get(item, []))
        self.room_rows.extend(scope_rows(None, item, arrays, splits, columns))

    def written(self, room: Room, sides: np.ndarray, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Per member: reasons written in the asynchronous form (the mode "both") for their
        own side and for the other side, on option j (every option for the whole session)."""
        m = len(room.member_ids)
        own, other = np.zeros(m, np.int64), np.zeros(m, np.int64)
        options = range(len(self.agenda.keys)) if j == NO_OPTION else (j,)
        for i, participant in enumerate(room.participants):
            for o in options:
                stance = self.loaded.written.get((participant, o), 0)
                if stance and sides[o, i]:
                    own[i] += stance == sides[o, i]
                    other[i] += stance == -sides[o, i]
        return own, other

    def members(
        self, room: Room, item: str, sides: np.ndarray | None, arrays: dict[str, np.ndarray]
    ) -> None:
        total = arrays["words"].sum()
        for i, pseudonym in enumerate(room.pseudonyms):
            values = {
                "room": room.group,
                "pseudonym": pseudonym,
                "item": item,
                "t1_side": None if sides is None or np.isnan(sides[i]) else int(sides[i]),
                "removed": room.removed[i],
                "word_share": arrays["words"][i] / total if total else None,
                **{f"n_{name}": arrays[name][i] for name in COUNTS if name != "cross_cutting"},
                "n_cross_cutting": arrays["cross_cutting"][i],
                "n_hidden": arrays["hidden"][i],
                "n_written_reasons_own": arrays["written_own"][i],
                "n_written_reasons_other": arrays["written_other"][i],
            }
            self.member_rows.append(json_row(values, MEMBER_COLUMNS))


def deliberation_tables(
    data: PollData, loaded: Loaded
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """(deliberation_rooms rows, deliberation_members rows, meta) of a poll; empty without
    rooms."""
    if not loaded.rooms:
        return [], [], {"n_rooms": 0}
    return Builder(data, loaded).build()


ROOM_COLUMNS = list(tables.DELIBERATION_ROOMS)
MEMBER_COLUMNS = list(tables.DELIBERATION_MEMBERS)
