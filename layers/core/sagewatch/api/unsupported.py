"""Arthur routes for features sagewatch does not have: a 400 that names the feature, not a bare 404.

Clients written for Arthur (the arthurai SDK) call these for what-if explanations, bias
mitigation, image inferences and model groups; they learn at once what sagewatch does not do.
The API's not-found handler asks `unsupported_feature` before answering 404.
"""

from __future__ import annotations

import re

_MODEL = r"^/api/v3/models/[^/]+"
FEATURES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(_MODEL + r"/enrichments/bias_mitigation(/.*)?$"), "bias mitigation"),
    (
        re.compile(_MODEL + r"/what_if$"),
        "what-if explanations (explanations of stored inferences are supported)",
    ),
    (re.compile(_MODEL + r"/inferences/images/[^/]+$"), "image models"),
    (re.compile(r"^/api/v3/model_groups(/.*)?$"), "model groups (versions)"),
]


def unsupported_feature(path: str) -> str | None:
    """The Arthur feature a path belongs to, when sagewatch does not have it."""
    for pattern, feature in FEATURES:
        if pattern.match(path):
            return feature
    return None
