"""Authoring tools beyond the edit forms: clone a poll, import and export its definition file."""

from typing import Any

from django.db import transaction

from surveys.definition.files import (
    DefinitionError,
    Problem,
    dump_poll,
    dump_yaml,
    parse_yaml,
    save_poll,
    validate,
)
from surveys.models import Poll
from surveys.roles import can_organise


@transaction.atomic
def clone_poll(*, poll: Poll, slug: str, by: Any) -> Poll:
    """Copy a poll's definition under a new slug, as a draft organised by the same people.

    This is how a poll that already has answers gets changed: its items are locked, the copy's
    are not. Participants, answers and reasons are never copied.
    """
    if Poll.objects.filter(slug=slug).exists():
        raise DefinitionError(slug, [Problem("slug", f"a poll with the slug '{slug}' exists")])
    data = dump_poll(poll)
    data["slug"] = slug
    data["status"] = Poll.Status.DRAFT
    copy, _ = save_poll(data=data, source=f"clone of {poll.slug}")
    copy.organisers.set([*poll.organisers.all(), by])
    return copy


@transaction.atomic
def import_definition(*, text: str, source: str, by: Any) -> tuple[Poll, bool]:
    """Create or update a poll from definition text; returns (poll, created).

    A poll with the same slug is updated only for one of its organisers. Imports always land as
    drafts or keep the current status: opening goes through the readiness check.
    """
    data = validate(parse_yaml(text, source), source)
    existing = Poll.objects.filter(slug=data["slug"]).first()
    if existing is not None and not can_organise(by, existing):
        problem = Problem(
            "slug", f"the slug '{data['slug']}' belongs to a poll you do not organise"
        )
        raise DefinitionError(source, [problem])
    data["status"] = existing.status if existing is not None else Poll.Status.DRAFT
    poll, created = save_poll(data=data, source=source)
    if created:
        poll.organisers.add(by)
    return poll, created


def export_definition(poll: Poll) -> str:
    return dump_yaml(poll)
