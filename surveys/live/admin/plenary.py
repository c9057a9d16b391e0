"""The plenary: the top-voted panel questions of every room of a poll, grouped by similarity,
and the organisers' published answers to a group of them.

Similar questions are found with TF-IDF over character n-grams within word boundaries (so
"sanctions" and "sanction", or Ukrainian inflections, still meet) and cosine similarity;
questions closer than ``SIMILAR`` are linked, and each connected set of links is one group.
"""

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from surveys.live.models import ExpertAnswer, PanelQuestion
from surveys.models import Poll

SIMILAR = 0.35
TOP_PER_ROOM = 3


@dataclass(frozen=True)
class Question:
    id: int
    text: str
    votes: int
    room_group: int
    language: str
    answered: bool


def group_similar(texts: list[str], threshold: float = SIMILAR) -> list[list[int]]:
    """Indexes of ``texts`` in groups of similar ones, largest group first, each in the order
    given. One text, or texts with nothing to compare (empty), stand alone."""
    if len(texts) < 2:
        return [[i] for i in range(len(texts))]
    # Imported here: the admin loads this module in every web process, and scikit-learn (with
    # scipy) would add about a second to each one's start and its memory for every request,
    # used only by this page.
    from scipy.sparse.csgraph import connected_components
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import cosine_similarity

    try:
        matrix = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), lowercase=True)
        vectors = matrix.fit_transform(texts)
    except ValueError:  # nothing but empty texts
        return [[i] for i in range(len(texts))]
    linked = cosine_similarity(vectors) >= threshold
    _count, labels = connected_components(linked, directed=False)
    groups: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        groups.setdefault(int(label), []).append(index)
    return sorted(groups.values(), key=lambda g: (-len(g), g[0]))


def top_questions(poll: Poll, per_room: int = TOP_PER_ROOM) -> list[Question]:
    """Each room's ``per_room`` most voted visible questions (ties: the earlier first)."""
    rows = (
        PanelQuestion.objects.filter(room__poll=poll, hidden_at__isnull=True)
        .annotate(n=Count("votes", distinct=True), answers_n=Count("answers", distinct=True))
        .values_list("pk", "text", "n", "room__group", "room__language", "answers_n")
        .order_by("room__group", "-n", "pk")
    )
    taken: dict[int, int] = {}
    found = []
    for pk, text, votes, group, language, answers_n in rows:
        if taken.get(group, 0) >= per_room:
            continue
        taken[group] = taken.get(group, 0) + 1
        found.append(Question(pk, text, votes, group, language, answers_n > 0))
    return found


def plenary_groups(poll: Poll) -> list[dict[str, Any]]:
    """The top questions grouped by similarity, groups with the most votes first."""
    questions = top_questions(poll)
    groups = [[questions[i] for i in g] for g in group_similar([q.text for q in questions])]
    shaped = [
        {
            "questions": sorted(g, key=lambda q: -q.votes),
            "votes": sum(q.votes for q in g),
            "rooms": len({q.room_group for q in g}),
            "answered": all(q.answered for q in g),
        }
        for g in groups
    ]
    return sorted(shaped, key=lambda g: (g["answered"], -g["votes"]))


@transaction.atomic
def publish_answer(
    *,
    poll: Poll,
    user: Any,
    title: str,
    text: str,
    link: str,
    language: str,
    question_ids: list[int],
) -> ExpertAnswer:
    """Publish the panel's answer to the poll's questions ``question_ids`` (others ignored):
    participants read it from now on, before their T2."""
    answer = ExpertAnswer.objects.create(
        poll=poll,
        title=title,
        text=text,
        link=link,
        language=language,
        published_at=timezone.now(),
        created_by=user,
    )
    answer.questions.set(
        PanelQuestion.objects.filter(Q(room__poll=poll), pk__in=question_ids).values_list(
            "pk", flat=True
        )
    )
    return answer
