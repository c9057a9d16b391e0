"""The error responses the API's OpenAPI schema documents, shared by every endpoint."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse

from results.api.serializers import ErrorSerializer


def error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


UNAUTHORISED = error("No token, or an unknown, revoked or expired token.")
NOT_FOUND = error("No such poll, or no grant for it (the same answer either way).")
THROTTLED = error("Too many requests with this token; retry after the Retry-After header.")
BAD_REQUEST = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="Invalid input: each offending parameter or field with its messages.",
)
COMMON_ERRORS = {401: UNAUTHORISED, 404: NOT_FOUND, 429: THROTTLED}
AGGREGATES_ONLY = error("Your grant for this poll gives its aggregate results only.")
MICRODATA_ERRORS = {**COMMON_ERRORS, 403: AGGREGATES_ONLY}
