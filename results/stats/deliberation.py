"""Measures of how a small group deliberated, from its stored transcript.

Part of :mod:`results.stats` (see its docstring for the input and output conventions). Pure
numpy: ``results.compute.deliberation`` turns the transcript into the per-message arrays below.

Input: one element per message written by a member (the moderator's prompts, nudges and system
lines are not members' messages and never enter), aligned across these arrays:

* ``author``: the member's index in the room, 0..m-1;
* ``words``: the message's word count (:func:`word_count`);
* ``reply``: True when the message replies to another member's message (a reply to oneself or
  to the moderator is not a reply to anyone in the group);
* ``author_side`` / ``target_side``: the author's and the replied-to member's side on the
  option the message is about, at T1 (:func:`side`): -1 below the rating scale's midpoint,
  +1 above it, 0 for the midpoint itself, no answer, don't know or no option (the question
  phase): neutral is not a side;
* ``stance``: the side the message argues for, by :func:`reason_stance` (0: no reason found).

Definitions (m members, x_i member i's words, n messages):

* share who spoke = #{i : member i wrote at least one message} / m;
* Gini of words, G = sum_i sum_j |x_i - x_j| / (2 m^2 mean(x)), computed from the sorted
  words as G = 2 sum_k k x_(k) / (m sum x) - (m + 1) / m (k = 1..m); 0 when everyone wrote the
  same, (m - 1) / m when one member wrote everything; undefined (NaN) when nobody wrote;
* a subgroup's participation ratio = (its share of the words) / (its share of the members);
  1 is proportional, below 1 under-represented;
* reply share = replies / n;
* cross-cutting share = replies whose author and target both have a side and differ / replies
  where both have a side;
* reasons for one's own side: messages whose stance equals the author's side; for the other
  side: whose stance is the opposite of the author's side (authors without a side give
  neither);
* spread: the sample standard deviation (ddof 1) of the option's ratings among the room's
  members with a complete pair, at T1 and at T2; change = sd_t2 - sd_t1 (negative: the room
  moved closer together).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from results.stats.base import NAN, ArrayLike, quiet, to_float

_WORD = re.compile(r"\w+", re.UNICODE)
# Words this short are mostly function words in both languages ("the", "and", "що", "але"):
# they would make every message overlap every argument.
MIN_SIGNAL_LENGTH = 4
# A message argues for a side when it shares at least this many signal words with one of that
# side's briefing arguments, and more than with any argument of the other side.
MIN_SHARED_WORDS = 2


def word_count(text: str) -> int:
    """Words in a message: runs of Unicode letters, digits or underscores."""
    return len(_WORD.findall(text))


def signal_words(text: str) -> frozenset[str]:
    """The lower-cased words of at least MIN_SIGNAL_LENGTH characters (digits left out)."""
    return frozenset(
        word
        for word in _WORD.findall(text.casefold())
        if len(word) >= MIN_SIGNAL_LENGTH and not word.isdigit()
    )


def argument_words(text: str) -> list[frozenset[str]]:
    """One briefing text (markdown) as its arguments: one per non-empty line or paragraph."""
    lines = (line.strip(" \t-*+#>0123456789.)") for line in text.splitlines())
    return [words for line in lines if line if (words := signal_words(line))]


def reason_stance(
    text: str,
    arguments_for: Sequence[frozenset[str]],
    arguments_against: Sequence[frozenset[str]],
) -> int:
    """The side a message gives a reason for: +1 (for the option), -1 (against), 0 (none found).

    The rule, a lexical one: a message is a reason for a side when it shares at least
    MIN_SHARED_WORDS signal words (:func:`signal_words`) with one of the briefing's arguments for
    that side and strictly more than with any argument of the other side. Members read those
    arguments just before the session, and a message that takes one up (or rebuts it in its
    words) is scored as taking that side: a rebuttal is scored wrongly, and a reason in words of
    one's own is not scored at all. So the counts are a lower bound of reasoning, comparable
    between rooms of one poll, not an exact classification.
    """
    words = signal_words(text)
    if not words:
        return 0
    best_for = max((len(words & a) for a in arguments_for), default=0)
    best_against = max((len(words & a) for a in arguments_against), default=0)
    if best_for >= MIN_SHARED_WORDS and best_for > best_against:
        return 1
    if best_against >= MIN_SHARED_WORDS and best_against > best_for:
        return -1
    return 0


def side(rating: float, *, scale_min: float, scale_max: float) -> int:
    """-1 below the scale's midpoint, +1 above, 0 at it or without a rating (NaN)."""
    if not np.isfinite(rating):
        return 0
    midpoint = (scale_min + scale_max) / 2
    return int(np.sign(rating - midpoint))


def gini(values: ArrayLike) -> float:
    """Gini coefficient of non-negative amounts (words per member); NaN for none or all zero.

    G = 2 sum_k k x_(k) / (m sum x) - (m + 1) / m over the ascending x_(1..m), which equals the
    mean absolute difference over all ordered pairs divided by twice the mean.
    """
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    if x.size == 0 or not np.isfinite(x).all() or (x < 0).any() or x.sum() == 0:
        return NAN
    m = x.size
    ranks = np.arange(1, m + 1)
    return to_float(2.0 * np.sum(ranks * x) / (m * x.sum()) - (m + 1) / m)


def spread(ratings_t1: ArrayLike, ratings_t2: ArrayLike) -> tuple[int, float, float, float]:
    """(complete pairs, sd_t1, sd_t2, sd_t2 - sd_t1) of ratings aligned by member; ddof 1."""
    t1 = np.asarray(ratings_t1, dtype=np.float64)
    t2 = np.asarray(ratings_t2, dtype=np.float64)
    pairs = np.isfinite(t1) & np.isfinite(t2)
    n = int(pairs.sum())
    if n < 2:
        return n, NAN, NAN, NAN
    with quiet():
        sd1 = float(np.std(t1[pairs], ddof=1))
        sd2 = float(np.std(t2[pairs], ddof=1))
    return n, sd1, sd2, sd2 - sd1


@dataclass(frozen=True)
class MemberCounts:
    """Per member (arrays of length m): what they wrote and how."""

    messages: np.ndarray
    words: np.ndarray
    replies: np.ndarray
    replies_sided: np.ndarray
    cross_cutting: np.ndarray
    reasons_own: np.ndarray
    reasons_other: np.ndarray


@dataclass(frozen=True)
class Transcript:
    """The per-message arrays of one room (or one agenda item of it); see the module doc."""

    author: np.ndarray
    words: np.ndarray
    reply: np.ndarray
    author_side: np.ndarray
    target_side: np.ndarray
    stance: np.ndarray

    @classmethod
    def of(
        cls,
        *,
        author: Iterable[int],
        words: Iterable[int],
        reply: Iterable[bool],
        author_side: Iterable[int],
        target_side: Iterable[int],
        stance: Iterable[int],
    ) -> Transcript:
        return cls(
            author=np.fromiter(author, dtype=np.int64),
            words=np.fromiter(words, dtype=np.int64),
            reply=np.fromiter(reply, dtype=bool),
            author_side=np.fromiter(author_side, dtype=np.int8),
            target_side=np.fromiter(target_side, dtype=np.int8),
            stance=np.fromiter(stance, dtype=np.int8),
        )

    def where(self, mask: np.ndarray) -> Transcript:
        return Transcript(
            self.author[mask],
            self.words[mask],
            self.reply[mask],
            self.author_side[mask],
            self.target_side[mask],
            self.stance[mask],
        )

    def member_counts(self, n_members: int) -> MemberCounts:
        """Each count of the module doc, summed per author with one bincount each."""
        if self.author.size and (self.author.min() < 0 or self.author.max() >= n_members):
            raise ValueError(f"author must be a member index 0..{n_members - 1}")
        sided = self.reply & (self.author_side != 0) & (self.target_side != 0)
        cross = sided & (self.author_side != self.target_side)
        has_side = self.author_side != 0
        own = has_side & (self.stance == self.author_side)
        other = has_side & (self.stance == -self.author_side)

        def per_member(weights: np.ndarray) -> np.ndarray:
            counts = np.bincount(self.author, weights=weights, minlength=n_members)
            return counts.astype(np.int64)

        return MemberCounts(
            messages=per_member(np.ones(self.author.size)),
            words=per_member(self.words.astype(np.float64)),
            replies=per_member(self.reply.astype(np.float64)),
            replies_sided=per_member(sided.astype(np.float64)),
            cross_cutting=per_member(cross.astype(np.float64)),
            reasons_own=per_member(own.astype(np.float64)),
            reasons_other=per_member(other.astype(np.float64)),
        )


@dataclass(frozen=True)
class GroupMeasures:
    """A room's (or a set of members') measures; see the module doc for each formula."""

    n_members: int
    n_speakers: int
    n_messages: int
    n_words: int
    share_spoke: float
    gini_words: float
    n_replies: int
    reply_share: float
    n_replies_sided: int
    cross_cutting_share: float
    n_reasons_own: int
    n_reasons_other: int


def group_measures(counts: MemberCounts, members: np.ndarray | None = None) -> GroupMeasures:
    """The measures over the members selected by ``members`` (a boolean mask; all if None)."""
    mask = np.ones(counts.messages.size, bool) if members is None else np.asarray(members, bool)
    m = int(mask.sum())
    messages = int(counts.messages[mask].sum())
    replies = int(counts.replies[mask].sum())
    sided = int(counts.replies_sided[mask].sum())
    speakers = int((counts.messages[mask] > 0).sum())
    return GroupMeasures(
        n_members=m,
        n_speakers=speakers,
        n_messages=messages,
        n_words=int(counts.words[mask].sum()),
        share_spoke=speakers / m if m else NAN,
        gini_words=gini(counts.words[mask]) if m else NAN,
        n_replies=replies,
        reply_share=replies / messages if messages else NAN,
        n_replies_sided=sided,
        cross_cutting_share=int(counts.cross_cutting[mask].sum()) / sided if sided else NAN,
        n_reasons_own=int(counts.reasons_own[mask].sum()),
        n_reasons_other=int(counts.reasons_other[mask].sum()),
    )


def participation_ratio(words: np.ndarray, subgroup: np.ndarray) -> tuple[float, float, float]:
    """(share of words, share of members, their ratio) of the members in ``subgroup`` (a mask
    over the members): how far the subgroup's voice matches its numbers. NaN where undefined
    (no words in the room, or an empty subgroup)."""
    words = np.asarray(words, dtype=np.float64)
    subgroup = np.asarray(subgroup, dtype=bool)
    total, m, k = words.sum(), words.size, int(subgroup.sum())
    word_share = float(words[subgroup].sum() / total) if total > 0 else NAN
    member_share = k / m if m else NAN
    ratio = word_share / member_share if k and np.isfinite(word_share) else NAN
    return word_share, member_share, ratio
