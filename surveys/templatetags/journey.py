"""Template helpers of the participant journey."""

from django import template
from django.utils.safestring import SafeString

from surveys.definition import markup

register = template.Library()


@register.simple_tag
def mark(kind: str, name: str, value: object = "") -> SafeString:
    """A per-participant marker in cached markup, replaced by ``surveys.definition.markup.fill``."""
    return markup.marker(kind, name, str(value))


@register.filter
def lookup(mapping: dict, key: str) -> object:
    return mapping.get(key, "")
